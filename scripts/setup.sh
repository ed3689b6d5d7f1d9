#!/usr/bin/env bash
# Installs what the local emulators need, into virtualenvs inside the repo
# (ignored by git). Safe to run again: it skips what is already there.
#   scripts/setup.sh            moto (the default emulator)
#   scripts/setup.sh localstack LocalStack community, on the host
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || die "python3 is needed (Debian: apt-get install python3 python3-venv)"
command -v curl >/dev/null || die "curl is needed (Debian: apt-get install curl)"

case "${1:-moto}" in
  moto)
    if [ ! -x "$ROOT/.venv/bin/moto_server" ]; then
      log "installing moto into .venv"
      python3 -m venv "$ROOT/.venv"
      "$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
    fi
    ;;
  localstack)
    if [ ! -x "$ROOT/.venv-localstack/bin/python" ] || ! "$ROOT/.venv-localstack/bin/python" -c "from OpenSSL import crypto; import localstack; crypto.X509.add_extensions" 2>/dev/null; then
      log "installing LocalStack (community, no Docker) into .venv-localstack"
      python3 -m venv "$ROOT/.venv-localstack"
      # 4.13.1 is the last release that runs on Python 3.11; cbor2 5.7 breaks it,
      # and pyOpenSSL 26 dropped the X509.add_extensions its TLS set-up calls.
      "$ROOT/.venv-localstack/bin/pip" install --quiet --disable-pip-version-check \
        'localstack-core[runtime]==4.13.1' 'cbor2<5.7' 'service_identity<26' 'pyOpenSSL<26'
    fi
    ;;
  *) die "unknown emulator '$1' (moto or localstack)" ;;
esac
