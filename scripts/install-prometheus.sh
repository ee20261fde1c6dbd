#!/usr/bin/env bash
# Prometheus's own tools for kass's operating assets (deploy/prometheus, deploy/grafana) and the
# tests that scrape a real kass: `prometheus`, `promtool` and `prometheus-pushgateway`, from the
# Debian packages, unpacked (never installed: no root, no service started) under $KASS_CACHE
# (default ~/.cache/kass):
#
#   $KASS_CACHE/debs/                  the .deb files (`apt-get download`)
#   $KASS_CACHE/prometheus/usr/bin/    prometheus, promtool, prometheus-pushgateway (`dpkg -x`)
#
# Source it to get, as absolute paths:
#   KASS_PROMETHEUS   the server
#   KASS_PROMTOOL     promtool (check config / check rules / test rules / query)
#   KASS_PUSHGATEWAY  the Pushgateway (the Lambdas push their metrics to one)
#
#   . scripts/install-prometheus.sh          # exports the three
#   bash scripts/install-prometheus.sh       # prints `export NAME=...` lines for eval
#
# Idempotent: nothing is downloaded or unpacked when the three binaries are there already, and a
# .deb already in $KASS_CACHE/debs is not downloaded again. When all three variables are set to
# executables beforehand (a machine without apt), they are kept as they are. It fails loudly
# (a message on stderr, non-zero status) when it cannot provide all three. The packages are
# static Go binaries: their Debian dependencies (web UI assets, adduser) are not needed.
#
# Sourced, it changes no shell option of its caller and defines nothing but the three
# variables (and KASS_CACHE, defaulted).

_kass_install_prometheus() {
  local cache="${KASS_CACHE:-$HOME/.cache/kass}"
  local debs="$cache/debs" root="$cache/prometheus"
  local bin="$root/usr/bin"
  local names=(prometheus promtool prometheus-pushgateway)
  local packages=(prometheus prometheus-pushgateway)
  local fail_prefix="install-prometheus.sh:"

  if [ -n "${KASS_PROMETHEUS:-}" ] && [ -n "${KASS_PROMTOOL:-}" ] && [ -n "${KASS_PUSHGATEWAY:-}" ] \
    && [ -x "$KASS_PROMETHEUS" ] && [ -x "$KASS_PROMTOOL" ] && [ -x "$KASS_PUSHGATEWAY" ]; then
    return 0
  fi

  local have=1 name
  for name in "${names[@]}"; do
    [ -x "$bin/$name" ] || have=0
  done

  if [ "$have" = 0 ]; then
    mkdir -p "$debs" || { echo "$fail_prefix cannot create $debs" >&2; return 1; }
    local package missing=()
    for package in "${packages[@]}"; do
      compgen -G "$debs/${package}_*.deb" >/dev/null || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
      command -v apt-get >/dev/null || {
        echo "$fail_prefix apt-get not found: cannot download ${missing[*]}." >&2
        echo "  On a machine without apt, set KASS_PROMETHEUS, KASS_PROMTOOL and KASS_PUSHGATEWAY" >&2
        echo "  to the binaries of a Prometheus 2.x and a Pushgateway 1.x before sourcing this." >&2
        return 1
      }
      echo "downloading ${missing[*]} (Debian packages) into $debs" >&2
      # As root, apt downloads as the `_apt` user, which cannot write to a private directory
      # (a harmless "Permission denied" warning): download as root instead. No effect otherwise.
      if ! (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >&2); then
        if [ "$(id -u)" = 0 ]; then
          # A fresh container often has no package lists: fetch them (installs nothing) and retry.
          echo "$fail_prefix apt-get download failed; refreshing the package lists and retrying" >&2
          apt-get update -q >&2 || true
          (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >&2) || {
            echo "$fail_prefix apt-get download ${missing[*]} failed (see above)" >&2
            return 1
          }
        else
          echo "$fail_prefix apt-get download ${missing[*]} failed (see above);" \
            "the package lists may be missing: run \`sudo apt-get update\` once" >&2
          return 1
        fi
      fi
    fi

    # Unpack into a fresh directory next to the final one, then swap it in: a run interrupted
    # half-way never leaves truncated binaries that a later run would take as installed.
    local staging
    staging="$(mktemp -d "$cache/prometheus.XXXXXX")" || {
      echo "$fail_prefix cannot create a staging directory in $cache" >&2
      return 1
    }
    local deb
    for package in "${packages[@]}"; do
      # The newest version downloaded, should there be several.
      deb="$(compgen -G "$debs/${package}_*.deb" | sort -V | tail -n 1)"
      [ -n "$deb" ] || { echo "$fail_prefix no ${package}_*.deb in $debs" >&2; rm -rf "$staging"; return 1; }
      dpkg -x "$deb" "$staging" || {
        echo "$fail_prefix dpkg -x $deb failed (a partial download? delete it and run again)" >&2
        rm -rf "$staging"
        return 1
      }
    done
    for name in "${names[@]}"; do
      [ -x "$staging/usr/bin/$name" ] || {
        echo "$fail_prefix the packages in $debs hold no usr/bin/$name" >&2
        rm -rf "$staging"
        return 1
      }
    done
    rm -rf "$root" && mv "$staging" "$root" || {
      echo "$fail_prefix cannot move the unpacked packages to $root" >&2
      rm -rf "$staging"
      return 1
    }
  fi

  # They must run here, not just exist (another architecture, a truncated file).
  for name in "${names[@]}"; do
    "$bin/$name" --version >/dev/null 2>&1 || {
      echo "$fail_prefix $bin/$name does not run (\`$bin/$name --version\` failed)" >&2
      return 1
    }
  done
  # Absolute even when KASS_CACHE is relative.
  bin="$(cd "$bin" && pwd)" || return 1
  export KASS_PROMETHEUS="$bin/prometheus"
  export KASS_PROMTOOL="$bin/promtool"
  export KASS_PUSHGATEWAY="$bin/prometheus-pushgateway"
}

export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  # Sourced: report failure to the caller (whose `set -e`, if any, stops it) without exiting
  # its shell.
  if ! _kass_install_prometheus; then
    unset -f _kass_install_prometheus
    echo "install-prometheus.sh: Prometheus tools unavailable;" \
      "KASS_PROMETHEUS, KASS_PROMTOOL and KASS_PUSHGATEWAY not set" >&2
    return 1
  fi
  unset -f _kass_install_prometheus
else
  _kass_install_prometheus || exit $?
  printf 'export KASS_PROMETHEUS=%q\nexport KASS_PROMTOOL=%q\nexport KASS_PUSHGATEWAY=%q\n' \
    "$KASS_PROMETHEUS" "$KASS_PROMTOOL" "$KASS_PUSHGATEWAY"
fi
