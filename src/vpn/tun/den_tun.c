/*
 * den_tun: the TUN device shim of den's VPN data plane, loaded with Deno.dlopen.
 *
 * A Deno FFI call is cheap when synchronous but costs tens of microseconds when it runs on
 * another thread (`nonblocking: true`), so reads are batched here: one call waits for the device
 * to become readable and then drains up to `max_packets` packets into one caller-owned buffer.
 *
 * Batch layout (both directions): packets back to back in `buf`, packet i starting at the sum of
 * lens[0..i-1], its length in lens[i]. No padding, no per-packet header.
 *
 * Every function returns a negative errno on failure (errno values of the host OS).
 *
 * Linux: /dev/net/tun with IFF_TUN | IFF_NO_PI (bare IP packets).
 * macOS: a utun kernel-control socket; the 4-byte address-family header utun puts in front of
 * each packet is stripped on read and added on write, so callers see bare IP packets there too.
 */
#if defined(__linux__)
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>

#if defined(__linux__)
#include <linux/if_tun.h>
#elif defined(__APPLE__)
#include <sys/kern_control.h>
#include <sys/sys_domain.h>
#include <sys/uio.h>
#ifndef UTUN_CONTROL_NAME
#define UTUN_CONTROL_NAME "com.apple.net.utun_control"
#endif
#ifndef UTUN_OPT_IFNAME
#define UTUN_OPT_IFNAME 2
#endif
#endif

#define DEN_TUN_ABI_VERSION 2 /* 2: den_udp.c (batched UDP, den_poll) */
#define DEN_EXPORT __attribute__((visibility("default")))

/* out_name is documented as 16 bytes; that is IFNAMSIZ on Linux and macOS. */
_Static_assert(IFNAMSIZ == 16, "IFNAMSIZ is expected to be 16");

DEN_EXPORT int den_tun_abi_version(void);
DEN_EXPORT int den_tun_open(const char *name, int mtu, char *out_name);
DEN_EXPORT int den_tun_read_batch(int fd, uint8_t *buf, int buf_len, uint32_t *lens,
                                  int max_packets, int slot, int timeout_ms);
DEN_EXPORT int den_tun_write_batch(int fd, const uint8_t *buf, const uint32_t *lens, int count);
DEN_EXPORT int den_tun_close(int fd);

int den_tun_abi_version(void) { return DEN_TUN_ABI_VERSION; }

#if defined(__linux__) || defined(__APPLE__)

static int set_nonblock_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return -errno;
  return 0;
}

/* SIOCSIFMTU through an AF_INET datagram socket (works for TUN and utun alike). */
static int set_mtu(const char *ifname, int mtu) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return -errno;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, strnlen(ifname, IFNAMSIZ - 1));
  ifr.ifr_mtu = mtu;
  int rc = 0;
  if (ioctl(s, SIOCSIFMTU, &ifr) < 0) rc = -errno;
  close(s);
  return rc;
}

static void copy_name(char *out_name, const char *ifname) {
  memset(out_name, 0, IFNAMSIZ);
  memcpy(out_name, ifname, strnlen(ifname, IFNAMSIZ - 1));
}

/* Errors after which no later packet of a batch can be written either. */
static int write_error_is_fatal(int e) {
  switch (e) {
    case EBADF:
    case EFAULT:
    case EPIPE:
    case ENXIO:
    case ENODEV:
#ifdef EBADFD
    case EBADFD: /* Linux: the TUN device was detached from this fd */
#endif
#ifdef ENOTCONN
    case ENOTCONN:
#endif
      return 1;
    default:
      return 0;
  }
}

#endif

#if defined(__linux__)

int den_tun_open(const char *name, int mtu, char *out_name) {
  if (name == NULL || out_name == NULL) return -EINVAL;
  size_t nlen = strnlen(name, IFNAMSIZ);
  if (nlen >= IFNAMSIZ) return -ENAMETOOLONG;
  if (mtu < 0 || mtu > 65535) return -EINVAL;

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -errno;

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, nlen);
  int rc = 0;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) rc = -errno;
  if (rc == 0) rc = set_nonblock_cloexec(fd);
  if (rc == 0 && mtu > 0) rc = set_mtu(ifr.ifr_name, mtu);
  if (rc != 0) {
    close(fd); /* a non-persistent device disappears with its last fd */
    return rc;
  }
  copy_name(out_name, ifr.ifr_name);
  return fd;
}

/* One packet: its length, 0 for nothing usable, -1 with errno set. */
static ssize_t read_packet(int fd, uint8_t *dst, size_t room) { return read(fd, dst, room); }

static ssize_t write_packet(int fd, const uint8_t *pkt, size_t len) {
  return write(fd, pkt, len);
}

#elif defined(__APPLE__)

/* "" → 0 (the kernel picks a free utun); "utunN" → N + 1. */
static int utun_unit(const char *name, uint32_t *unit) {
  if (name[0] == '\0') {
    *unit = 0;
    return 0;
  }
  if (strncmp(name, "utun", 4) != 0) return -EINVAL;
  const char *p = name + 4;
  if (*p == '\0' || (p[0] == '0' && p[1] != '\0')) return -EINVAL;
  uint32_t v = 0;
  for (; *p != '\0'; p++) {
    if (*p < '0' || *p > '9') return -EINVAL;
    v = v * 10 + (uint32_t)(*p - '0');
    if (v > 0xfffe) return -EINVAL;
  }
  *unit = v + 1;
  return 0;
}

int den_tun_open(const char *name, int mtu, char *out_name) {
  if (name == NULL || out_name == NULL) return -EINVAL;
  if (strnlen(name, IFNAMSIZ) >= IFNAMSIZ) return -ENAMETOOLONG;
  if (mtu < 0 || mtu > 65535) return -EINVAL;
  uint32_t unit;
  int rc = utun_unit(name, &unit);
  if (rc != 0) return rc;

  int fd = socket(PF_SYSTEM, SOCK_DGRAM, SYSPROTO_CONTROL);
  if (fd < 0) return -errno;

  struct ctl_info info;
  memset(&info, 0, sizeof info);
  memcpy(info.ctl_name, UTUN_CONTROL_NAME, sizeof UTUN_CONTROL_NAME);
  if (ioctl(fd, CTLIOCGINFO, &info) < 0) rc = -errno;

  if (rc == 0) {
    struct sockaddr_ctl sc;
    memset(&sc, 0, sizeof sc);
    sc.sc_len = sizeof sc;
    sc.sc_family = AF_SYSTEM;
    sc.ss_sysaddr = AF_SYS_CONTROL;
    sc.sc_id = info.ctl_id;
    sc.sc_unit = unit;
    if (connect(fd, (struct sockaddr *)&sc, sizeof sc) < 0) rc = -errno;
  }

  char ifname[IFNAMSIZ];
  memset(ifname, 0, sizeof ifname);
  if (rc == 0) {
    socklen_t len = sizeof ifname;
    if (getsockopt(fd, SYSPROTO_CONTROL, UTUN_OPT_IFNAME, ifname, &len) < 0) rc = -errno;
  }
  if (rc == 0) rc = set_nonblock_cloexec(fd);
  if (rc == 0 && mtu > 0) rc = set_mtu(ifname, mtu);
  if (rc != 0) {
    close(fd); /* closing the control socket removes the utun interface */
    return rc;
  }
  copy_name(out_name, ifname);
  return fd;
}

/* utun prefixes each packet with the address family (network byte order): strip it. */
static ssize_t read_packet(int fd, uint8_t *dst, size_t room) {
  uint32_t family;
  struct iovec iov[2] = {{&family, sizeof family}, {dst, room}};
  ssize_t n = readv(fd, iov, 2);
  if (n < 0) return -1;
  if ((size_t)n < sizeof family) return 0;
  return n - (ssize_t)sizeof family;
}

static ssize_t write_packet(int fd, const uint8_t *pkt, size_t len) {
  uint32_t family;
  switch (pkt[0] >> 4) {
    case 4:
      family = htonl(AF_INET);
      break;
    case 6:
      family = htonl(AF_INET6);
      break;
    default:
      errno = EINVAL;
      return -1;
  }
  struct iovec iov[2] = {{&family, sizeof family}, {(void *)(uintptr_t)pkt, len}};
  return writev(fd, iov, 2);
}

#else

int den_tun_open(const char *name, int mtu, char *out_name) {
  (void)name;
  (void)mtu;
  (void)out_name;
  return -ENOSYS;
}

#endif

#if defined(__linux__) || defined(__APPLE__)

int den_tun_read_batch(int fd, uint8_t *buf, int buf_len, uint32_t *lens, int max_packets,
                       int slot, int timeout_ms) {
  if (fd < 0) return -EBADF;
  if (buf == NULL || lens == NULL || buf_len <= 0 || max_packets <= 0 || slot <= 0 ||
      slot > buf_len)
    return -EINVAL;

  struct pollfd p;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  int r = poll(&p, 1, timeout_ms < 0 ? 0 : timeout_ms);
  if (r < 0) return errno == EINTR ? 0 : -errno; /* EINTR: like a timeout, the caller loops */
  if (r == 0) return 0;
  if (p.revents & POLLNVAL) return -EBADF;

  int count = 0;
  size_t off = 0;
  size_t total = (size_t)buf_len;
  while (count < max_packets && total - off >= (size_t)slot) {
    ssize_t n = read_packet(fd, buf + off, total - off);
    if (n < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (count > 0) break; /* hand over what we have; the error comes back on the next call */
      return -e;
    }
    if (n == 0) break;
    lens[count++] = (uint32_t)n;
    off += (size_t)n;
  }
  return count;
}

int den_tun_write_batch(int fd, const uint8_t *buf, const uint32_t *lens, int count) {
  if (fd < 0) return -EBADF;
  if (count < 0 || (count > 0 && (buf == NULL || lens == NULL))) return -EINVAL;

  int written = 0;
  size_t off = 0;
  for (int i = 0; i < count; i++) {
    const uint8_t *pkt = buf + off;
    size_t len = lens[i];
    off += len;
    if (len == 0) continue;
    ssize_t n;
    do {
      n = write_packet(fd, pkt, len);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
      written++;
      continue;
    }
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) break; /* queue full: drop the rest */
    if (write_error_is_fatal(e)) return written > 0 ? written : -e;
    /* EINVAL, EIO, EMSGSIZE...: the kernel refused this packet; skip it. */
  }
  return written;
}

int den_tun_close(int fd) {
  if (fd < 0) return -EBADF;
  return close(fd) < 0 ? -errno : 0;
}

#else

int den_tun_read_batch(int fd, uint8_t *buf, int buf_len, uint32_t *lens, int max_packets,
                       int slot, int timeout_ms) {
  (void)fd;
  (void)buf;
  (void)buf_len;
  (void)lens;
  (void)max_packets;
  (void)slot;
  (void)timeout_ms;
  return -ENOSYS;
}

int den_tun_write_batch(int fd, const uint8_t *buf, const uint32_t *lens, int count) {
  (void)fd;
  (void)buf;
  (void)lens;
  (void)count;
  return -ENOSYS;
}

int den_tun_close(int fd) {
  (void)fd;
  return -ENOSYS;
}

#endif
