/*
 * den_udp: the UDP half of den's VPN data plane, built into the same library as den_tun.c.
 *
 * Deno's own UDP socket receives one datagram per asynchronous call and cannot enlarge its
 * receive buffer, so it drops datagrams under load (docs/DATAPLANE.md, "Transport"). Here one
 * synchronous call moves a whole batch: recvmmsg / sendmmsg on Linux, a loop elsewhere, on a
 * non-blocking socket whose buffers are enlarged. den_poll waits for any of several descriptors
 * (the UDP socket and the TUN devices) so one thread can drive them all.
 *
 * Addresses cross this boundary as 20-byte records: family (4 or 6), 0, port (network order),
 * 16 address bytes (an IPv4 address in the first 4). IPv4-mapped IPv6 addresses come back as 4.
 *
 * Batch layout as in den_tun.c: datagrams back to back in `buf`, lengths in lens[i], the peer
 * address of datagram i at addrs + 20 * i. Functions return a negative errno on failure.
 */
#if defined(__linux__)
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <netinet/in.h>

#define DEN_EXPORT __attribute__((visibility("default")))
#define ADDR_LEN 20
#define MAX_BATCH 256

DEN_EXPORT int den_udp_open(const uint8_t *addr, int buf_bytes);
DEN_EXPORT int den_udp_local(int fd, uint8_t *addr);
DEN_EXPORT int den_udp_recv_batch(int fd, uint8_t *buf, int buf_len, uint32_t *lens,
                                  uint8_t *addrs, int max, int slot);
DEN_EXPORT int den_udp_send_batch(int fd, const uint8_t *buf, const uint32_t *lens,
                                  const uint8_t *addrs, int count);
DEN_EXPORT int den_poll(const int32_t *fds, int count, int timeout_ms, uint8_t *ready);

/* Record → sockaddr; a socket of family AF_INET6 gets IPv4 destinations as mapped addresses. */
static socklen_t to_sockaddr(const uint8_t *rec, int sock_family, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  uint16_t port_be;
  memcpy(&port_be, rec + 2, 2);
  if (rec[0] == 4 && sock_family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = port_be;
    memcpy(&s4->sin_addr, rec + 4, 4);
#if defined(__APPLE__)
    s4->sin_len = sizeof *s4;
#endif
    return sizeof *s4;
  }
  if (sock_family != AF_INET6 || (rec[0] != 4 && rec[0] != 6)) return 0;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  s6->sin6_family = AF_INET6;
  s6->sin6_port = port_be;
  if (rec[0] == 4) {
    s6->sin6_addr.s6_addr[10] = 0xff;
    s6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&s6->sin6_addr.s6_addr[12], rec + 4, 4);
  } else {
    memcpy(&s6->sin6_addr, rec + 4, 16);
  }
#if defined(__APPLE__)
  s6->sin6_len = sizeof *s6;
#endif
  return sizeof *s6;
}

static void from_sockaddr(const struct sockaddr_storage *ss, uint8_t *rec) {
  memset(rec, 0, ADDR_LEN);
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    rec[0] = 4;
    memcpy(rec + 2, &s4->sin_port, 2);
    memcpy(rec + 4, &s4->sin_addr, 4);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(rec + 2, &s6->sin6_port, 2);
    if (memcmp(&s6->sin6_addr, mapped, 12) == 0) {
      rec[0] = 4;
      memcpy(rec + 4, &s6->sin6_addr.s6_addr[12], 4);
    } else {
      rec[0] = 6;
      memcpy(rec + 4, &s6->sin6_addr, 16);
    }
  }
}

static int socket_family(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
  return ss.ss_family;
}

/* Larger kernel buffers: SO_*BUFFORCE (root or CAP_NET_ADMIN) ignores the sysctl ceiling. */
static void enlarge_buffers(int fd, int bytes) {
  if (bytes <= 0) return;
#if defined(SO_RCVBUFFORCE)
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) < 0)
#endif
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
#if defined(SO_SNDBUFFORCE)
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) < 0)
#endif
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

int den_udp_open(const uint8_t *addr, int buf_bytes) {
  if (addr == NULL || (addr[0] != 4 && addr[0] != 6)) return -EINVAL;
  int family = addr[0] == 4 ? AF_INET : AF_INET6;
  struct sockaddr_storage ss;
  socklen_t len = to_sockaddr(addr, family, &ss);
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) return -errno;
  int rc = 0;
  int off = 0;
  if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0)
    rc = -errno; /* dual stack: IPv4 peers arrive as mapped addresses */
  int fl = fcntl(fd, F_GETFL);
  if (rc == 0 && (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) rc = -errno;
  if (rc == 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) rc = -errno;
  if (rc == 0 && bind(fd, (struct sockaddr *)&ss, len) < 0) rc = -errno;
  if (rc != 0) {
    close(fd);
    return rc;
  }
  enlarge_buffers(fd, buf_bytes);
  return fd;
}

int den_udp_local(int fd, uint8_t *addr) {
  if (addr == NULL) return -EINVAL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
  from_sockaddr(&ss, addr);
  return 0;
}

static int check_batch(const uint8_t *buf, const uint32_t *lens, const uint8_t *addrs, int n) {
  if (n < 0 || n > MAX_BATCH) return -EINVAL;
  if (n > 0 && (buf == NULL || lens == NULL || addrs == NULL)) return -EINVAL;
  return 0;
}

int den_udp_recv_batch(int fd, uint8_t *buf, int buf_len, uint32_t *lens, uint8_t *addrs,
                       int max, int slot) {
  int rc = check_batch(buf, lens, addrs, max);
  if (rc != 0) return rc;
  if (slot <= 0 || buf_len < 0 || (long)slot * max > (long)buf_len) return -EINVAL;
  struct sockaddr_storage from[MAX_BATCH];
#if defined(__linux__)
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)max);
  for (int i = 0; i < max; i++) {
    iov[i].iov_base = buf + (size_t)i * (size_t)slot;
    iov[i].iov_len = (size_t)slot;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
  }
  int n;
  do {
    n = recvmmsg(fd, msgs, (unsigned)max, MSG_DONTWAIT, NULL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
  /* Datagrams are packed back to back, as the caller reads them in order. */
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    uint32_t len = msgs[i].msg_len;
    if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) len = 0; /* longer than a slot: dropped */
    if (off != (size_t)i * (size_t)slot && len > 0) memmove(buf + off, iov[i].iov_base, len);
    lens[i] = len;
    off += len;
    from_sockaddr(&from[i], addrs + (size_t)i * ADDR_LEN);
  }
  return n;
#else
  int n = 0;
  size_t off = 0;
  while (n < max) {
    socklen_t flen = sizeof from[n];
    ssize_t got = recvfrom(fd, buf + off, (size_t)slot, MSG_DONTWAIT,
                           (struct sockaddr *)&from[n], &flen);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n > 0) break;
      return -errno;
    }
    lens[n] = (uint32_t)got;
    from_sockaddr(&from[n], addrs + (size_t)n * ADDR_LEN);
    off += (size_t)got;
    n++;
  }
  return n;
#endif
}

int den_udp_send_batch(int fd, const uint8_t *buf, const uint32_t *lens, const uint8_t *addrs,
                       int count) {
  int rc = check_batch(buf, lens, addrs, count);
  if (rc != 0) return rc;
  int family = socket_family(fd);
  if (family < 0) return family;
  struct sockaddr_storage to[MAX_BATCH];
  socklen_t to_len[MAX_BATCH];
  for (int i = 0; i < count; i++) {
    to_len[i] = to_sockaddr(addrs + (size_t)i * ADDR_LEN, family, &to[i]);
    if (to_len[i] == 0) return -EAFNOSUPPORT;
  }
#if defined(__linux__)
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)count);
  size_t off = 0;
  for (int i = 0; i < count; i++) {
    iov[i].iov_base = (void *)(uintptr_t)(buf + off);
    iov[i].iov_len = lens[i];
    off += lens[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &to[i];
    msgs[i].msg_hdr.msg_namelen = to_len[i];
  }
  int sent = 0;
  while (sent < count) {
    int n = sendmmsg(fd, msgs + sent, (unsigned)(count - sent), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break; /* full: drop */
      /* This datagram was refused (e.g. no route to its address): skip it, send the rest. */
      if (sent + 1 < count && errno != EBADF && errno != ENOTSOCK) {
        sent++;
        continue;
      }
      return sent > 0 ? sent : -errno;
    }
    sent += n;
  }
  return sent;
#else
  int sent = 0;
  size_t off = 0;
  for (int i = 0; i < count; i++) {
    ssize_t n;
    do {
      n = sendto(fd, buf + off, lens[i], MSG_DONTWAIT, (struct sockaddr *)&to[i], to_len[i]);
    } while (n < 0 && errno == EINTR);
    off += lens[i];
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) break;
    if (n < 0 && (errno == EBADF || errno == ENOTSOCK)) return sent > 0 ? sent : -errno;
    if (n >= 0) sent++;
  }
  return sent;
#endif
}

int den_poll(const int32_t *fds, int count, int timeout_ms, uint8_t *ready) {
  if (count <= 0 || count > 64 || fds == NULL || ready == NULL) return -EINVAL;
  struct pollfd p[64];
  for (int i = 0; i < count; i++) {
    p[i].fd = fds[i];
    p[i].events = POLLIN;
    p[i].revents = 0;
  }
  int r = poll(p, (nfds_t)count, timeout_ms < 0 ? 0 : timeout_ms);
  if (r < 0) return errno == EINTR ? 0 : -errno;
  for (int i = 0; i < count; i++) {
    ready[i] = (p[i].revents & POLLIN) ? 1 : (p[i].revents & (POLLERR | POLLHUP | POLLNVAL)) ? 2 : 0;
  }
  return r;
}
