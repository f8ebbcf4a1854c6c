#!/bin/sh
# den installer: downloads the den binary for this machine from a GitHub release, verifies it
# against the release's SHA256SUMS and installs it. Nothing is installed unless the checksum matches.
#
#   curl -fsSL https://github.com/den-mesh/den/releases/latest/download/install.sh | sh
#   sh install.sh [--version V] [--prefix DIR]
#
# Options:
#   --version V    install release V (accepts 1.2.3 or v1.2.3); default: the latest release
#   --prefix DIR   install to DIR/bin/den; default: /usr/local/bin/den as root, else ~/.local/bin/den
#   -h, --help     show this help
#
# Environment:
#   DEN_RELEASE_URL  base URL of the release downloads, holding vV/<asset>, vV/SHA256SUMS and
#                    latest/<asset>, latest/SHA256SUMS (for mirrors and testing);
#                    default https://github.com/$DEN_REPO/releases/download
#   DEN_REPO         GitHub repository owner/name (default den-mesh/den)
#
# Assets are named den-<os>-<arch>: os linux or darwin, arch x86_64 or aarch64.
# Needs curl or wget, and sha256sum, shasum or openssl.
# Messages go to stderr. Exit codes: 0 installed (or already installed), 1 failure, 2 usage error.
#
# The whole script is wrapped in functions and main runs on the last line, so a download cut short
# by `curl | sh` runs nothing.

set -eu

REPO="${DEN_REPO:-den-mesh/den}"

PROG=den-install
TMP_DIR=""
STAGED=""

say() {
  printf '%s: %s\n' "$PROG" "$*" >&2
}

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}

usage_error() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  printf '%s: run with --help for usage\n' "$PROG" >&2
  exit 2
}

usage() {
  cat <<'EOF'
Usage: install.sh [--version V] [--prefix DIR]

Downloads den for this machine, verifies its SHA-256 against the release's SHA256SUMS and
installs it. Nothing is installed unless the checksum matches.

Options:
  --version V    install release V (1.2.3 or v1.2.3); default: the latest release
  --prefix DIR   install to DIR/bin/den; default: /usr/local/bin as root, else ~/.local/bin
  -h, --help     show this help

Environment:
  DEN_RELEASE_URL  base URL holding vV/<asset> and vV/SHA256SUMS (latest/ for the latest)
  DEN_REPO         GitHub repository owner/name (default den-mesh/den)
EOF
}

cleanup() {
  if [ -n "$STAGED" ]; then
    rm -f "$STAGED"
  fi
  if [ -n "$TMP_DIR" ]; then
    rm -rf "$TMP_DIR"
  fi
}

have() {
  command -v "$1" >/dev/null 2>&1
}

# detect_platform: sets OS and ARCH from uname.
detect_platform() {
  os_raw=$(uname -s 2>/dev/null) || die "could not run uname -s to detect the operating system"
  arch_raw=$(uname -m 2>/dev/null) || die "could not run uname -m to detect the CPU architecture"
  case "$os_raw" in
    Linux) OS=linux ;;
    Darwin) OS=darwin ;;
    *) die "unsupported operating system '$os_raw': den release binaries exist only for Linux and macOS" ;;
  esac
  case "$arch_raw" in
    x86_64 | amd64) ARCH=x86_64 ;;
    aarch64 | arm64) ARCH=aarch64 ;;
    *) die "unsupported CPU architecture '$arch_raw': den release binaries exist only for x86_64 and aarch64 (arm64)" ;;
  esac
  # A shell running under Rosetta 2 on Apple silicon reports x86_64; the native arm64 build is
  # the right one there (sysctl.proc_translated is 1 only inside Rosetta).
  if [ "$OS" = darwin ] && [ "$ARCH" = x86_64 ]; then
    if [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || true)" = 1 ]; then
      say "Rosetta 2 detected: installing the native Apple silicon (aarch64) build"
      ARCH=aarch64
    fi
  fi
}

# download URL FILE
download() {
  if have curl; then
    curl -fsSL --show-error --proto '=https,http' --retry 3 -o "$2" "$1" || return 1
  elif have wget; then
    wget -qO "$2" "$1" || return 1
  else
    die "neither curl nor wget is installed; install one of them and run this again"
  fi
}

# sha256_of FILE: prints the lowercase hex SHA-256 of FILE.
sha256_of() {
  if have sha256sum; then
    sum=$(sha256sum <"$1") || return 1
  elif have shasum; then
    sum=$(shasum -a 256 <"$1") || return 1
  elif have openssl; then
    # "SHA256(stdin)= <hex>" or "SHA2-256(stdin)= <hex>" or "(stdin)= <hex>": the hex is last.
    sum=$(openssl dgst -sha256 <"$1") || return 1
    sum=${sum##* }
  else
    return 1
  fi
  printf '%s\n' "${sum%% *}" | tr 'A-F' 'a-f'
}

# is_hex64 STRING
is_hex64() {
  case "$1" in
    "" | *[!0-9a-f]*) return 1 ;;
  esac
  [ "${#1}" -eq 64 ]
}

main() {
  VERSION=""
  PREFIX=""
  while [ $# -gt 0 ]; do
    case "$1" in
      -h | --help)
        usage
        exit 0
        ;;
      --version)
        [ $# -ge 2 ] || usage_error "--version needs a value, e.g. --version 1.2.3"
        VERSION=$2
        shift 2
        ;;
      --version=*)
        VERSION=${1#--version=}
        shift
        ;;
      --prefix)
        [ $# -ge 2 ] || usage_error "--prefix needs a directory, e.g. --prefix \$HOME/.local"
        PREFIX=$2
        shift 2
        ;;
      --prefix=*)
        PREFIX=${1#--prefix=}
        shift
        ;;
      *) usage_error "unknown option '$1'" ;;
    esac
  done

  VERSION=${VERSION#v}
  if [ -n "$VERSION" ]; then
    case "$VERSION" in
      *[!0-9A-Za-z.+-]*) usage_error "invalid version '$VERSION' (expected something like 1.2.3)" ;;
    esac
  fi

  if [ -n "$PREFIX" ]; then
    case "$PREFIX" in
      /*) ;;
      *) PREFIX="$(pwd)/$PREFIX" ;;
    esac
    BIN_DIR="${PREFIX%/}/bin"
  elif [ "$(id -u)" = 0 ]; then
    BIN_DIR=/usr/local/bin
  else
    [ -n "${HOME:-}" ] || die "HOME is not set; choose where to install with --prefix DIR"
    BIN_DIR="$HOME/.local/bin"
  fi
  TARGET="$BIN_DIR/den"

  detect_platform
  ASSET="den-$OS-$ARCH"

  if [ -n "$VERSION" ]; then
    base="${DEN_RELEASE_URL:-https://github.com/$REPO/releases/download}"
    BASE_URL="${base%/}/v$VERSION/"
    LABEL=$VERSION
  elif [ -n "${DEN_RELEASE_URL:-}" ]; then
    BASE_URL="${DEN_RELEASE_URL%/}/latest/"
    LABEL="(latest release)"
  else
    BASE_URL="https://github.com/$REPO/releases/latest/download/"
    LABEL="(latest release)"
  fi

  have curl || have wget || die "neither curl nor wget is installed; install one of them and run this again"
  if ! have sha256sum && ! have shasum && ! have openssl; then
    die "no SHA-256 tool found (sha256sum, shasum or openssl); refusing to install an unverified binary"
  fi

  TMP_DIR=$(mktemp -d 2>/dev/null || mktemp -d -t den-install) || die "could not create a temporary directory"
  trap cleanup EXIT
  trap 'cleanup; exit 130' INT
  trap 'cleanup; exit 143' TERM

  say "installing den $LABEL ($ASSET) to $TARGET"

  sums_url="${BASE_URL}SHA256SUMS"
  if ! download "$sums_url" "$TMP_DIR/SHA256SUMS"; then
    if [ -n "$VERSION" ] && [ -z "${DEN_RELEASE_URL:-}" ]; then
      die "could not download $sums_url (does release v$VERSION exist? see https://github.com/$REPO/releases)"
    elif [ -n "$VERSION" ]; then
      die "could not download $sums_url (does release v$VERSION exist?)"
    fi
    die "could not download $sums_url"
  fi

  # Lines are "<hex>  <name>" (text mode) or "<hex> *<name>" (binary mode); match the name exactly.
  expected=$(awk -v name="$ASSET" '
    { sub(/\r$/, "") }
    NF == 2 { f = $2; sub(/^\*/, "", f); if (f == name) { print $1; exit } }
  ' "$TMP_DIR/SHA256SUMS" | tr 'A-F' 'a-f')
  if ! is_hex64 "$expected"; then
    say "SHA256SUMS at $sums_url has no valid entry for $ASSET"
    die "refusing to install an unverified binary"
  fi

  asset_url="${BASE_URL}$ASSET"
  if ! download "$asset_url" "$TMP_DIR/$ASSET"; then
    die "could not download $asset_url"
  fi

  actual=$(sha256_of "$TMP_DIR/$ASSET") || die "could not compute the SHA-256 of $ASSET; refusing to install"
  if [ "$actual" != "$expected" ]; then
    printf '%s: error: checksum mismatch for %s: expected %s, got %s\n' \
      "$PROG" "$ASSET" "$expected" "$actual" >&2
    printf '%s: error: refusing to install\n' "$PROG" >&2
    exit 1
  fi
  say "verified SHA-256 $actual"

  if [ -f "$TARGET" ]; then
    current=$(sha256_of "$TARGET" 2>/dev/null || true)
    if [ "$current" = "$actual" ]; then
      chmod 755 "$TARGET" 2>/dev/null || true
      say "den $LABEL is already installed at $TARGET"
      exit 0
    fi
  fi

  mkdir -p "$BIN_DIR" || die "could not create $BIN_DIR (try --prefix DIR, or run as root)"
  # Stage next to the target and rename over it, so the replacement is atomic.
  STAGED="$BIN_DIR/.den.install.$$"
  cp "$TMP_DIR/$ASSET" "$STAGED" || die "could not write to $BIN_DIR (try --prefix DIR, or run as root)"
  chmod 755 "$STAGED" || die "could not make $STAGED executable"
  mv -f "$STAGED" "$TARGET" || die "could not move the new binary to $TARGET"
  STAGED=""

  say "installed den $LABEL to $TARGET"
  "$TARGET" version </dev/null >&2 || true

  case ":${PATH:-}:" in
    *":$BIN_DIR:"*) ;;
    *)
      printf '\n' >&2
      say "$BIN_DIR is not in your PATH. To add it:"
      case "$(basename "${SHELL:-sh}")" in
        fish) say "  fish_add_path $BIN_DIR" ;;
        zsh) say "  echo 'export PATH=\"$BIN_DIR:\$PATH\"' >> ~/.zshrc  # then open a new shell" ;;
        bash) say "  echo 'export PATH=\"$BIN_DIR:\$PATH\"' >> ~/.bashrc  # then open a new shell" ;;
        *) say "  echo 'export PATH=\"$BIN_DIR:\$PATH\"' >> ~/.profile  # then log in again" ;;
      esac
      say "  or for this shell only: export PATH=\"$BIN_DIR:\$PATH\""
      ;;
  esac

  printf '\n' >&2
  say "next steps:"
  say "  den init --name NAME     # create this node's identity and config"
  say "  den service install      # run the den daemon at boot"
}

main "$@"
