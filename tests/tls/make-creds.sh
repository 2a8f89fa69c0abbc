#!/usr/bin/env bash
# tests/tls/make-creds.sh DIR - generate the TLS credentials the tests use,
# with gnutls' certtool and psktool, laid out as nbdkit and qemu expect:
#   DIR/pki/          ca-cert.pem, server-cert.pem/-key.pem (localhost,
#                     127.0.0.1, ::1), client-cert.pem/-key.pem
#   DIR/client/       ca-cert.pem + client cert/key: what a client is given
#   DIR/client-nocert ca-cert.pem only
#   DIR/other-ca/     an unrelated CA (a client trusting it must refuse)
#   DIR/expired/      server cert signed by the CA, expired in 2020
#   DIR/wronghost/    server cert signed by the CA for wrong.example only
#   DIR/psk/keys.psk  user alice; DIR/psk-wrong/keys.psk alice, another key
# With $NBDAIO_CREDS_CACHE set (a directory; meson gives one in the build
# directory, as the TLS tests run one case per process), they are made
# there once, remade when this script is newer, and copied to DIR.
set -euo pipefail
d=$1
cache=${NBDAIO_CREDS_CACHE:-}
if [ -n "$cache" ]; then
  if ! [ "$cache/.made" -nt "$0" ]; then
    tmp=$(mktemp -d "$cache.XXXXXX")
    chmod 755 "$tmp"
    NBDAIO_CREDS_CACHE='' bash "$0" "$tmp" || { rm -rf "$tmp"; exit 1; }
    touch "$tmp/.made"
    rm -rf "$cache"
    mv -T "$tmp" "$cache" 2>/dev/null || rm -rf "$tmp"   # another run won
  fi
  mkdir -p "$d"
  cp -a "$cache/." "$d/"
  rm -f "$d/.made"
  exit 0
fi
mkdir -p "$d"/{pki,client,client-nocert,other-ca,expired,wronghost,psk,psk-wrong}
cd "$d"

ct() { certtool "$@" >/dev/null 2>&1; }

cat > ca.info <<'T'
cn = nbdaio test CA
ca
cert_signing_key
expiration_days = 3650
T
cat > server.info <<'T'
organization = nbdaio tests
cn = localhost
dns_name = localhost
ip_address = 127.0.0.1
ip_address = ::1
tls_www_server
encryption_key
signing_key
expiration_days = 3650
T
cat > client.info <<'T'
organization = nbdaio tests
cn = client
tls_www_client
encryption_key
signing_key
expiration_days = 3650
T
cat > expired.info <<'T'
cn = localhost
dns_name = localhost
ip_address = 127.0.0.1
tls_www_server
encryption_key
signing_key
activation_date = "2019-01-01 00:00:00 UTC"
expiration_date = "2020-01-01 00:00:00 UTC"
T
cat > wronghost.info <<'T'
cn = wrong.example
dns_name = wrong.example
tls_www_server
encryption_key
signing_key
expiration_days = 3650
T

ca() {  # ca DIR: a self-signed CA in DIR
  ct --generate-privkey --outfile "$1/ca-key.pem"
  ct --generate-self-signed --load-privkey "$1/ca-key.pem" \
     --template ca.info --outfile "$1/ca-cert.pem"
}
signed() {  # signed DIR NAME TEMPLATE: NAME-key.pem/NAME-cert.pem by pki CA
  ct --generate-privkey --outfile "$1/$2-key.pem"
  ct --generate-certificate --load-privkey "$1/$2-key.pem" \
     --load-ca-certificate pki/ca-cert.pem --load-ca-privkey pki/ca-key.pem \
     --template "$3" --outfile "$1/$2-cert.pem"
}

ca pki
signed pki server server.info
signed pki client client.info
ca other-ca
for dir in expired wronghost; do
  signed "$dir" server "$dir.info"
  cp pki/ca-cert.pem "$dir/"
done
cp pki/ca-cert.pem pki/client-cert.pem pki/client-key.pem client/
cp pki/ca-cert.pem client-nocert/
rm -f other-ca/ca-key.pem
psktool -u alice -p psk/keys.psk >/dev/null
psktool -u alice -p psk-wrong/keys.psk >/dev/null
# private keys 0600: the client refuses a key file group or others can read
chmod 0600 */*key* psk*/keys.psk
