#!/usr/bin/env bash
# Makes the TLS fixtures of the HTTPS provider tests: a test CA and a certificate for
# 127.0.0.1 / localhost that it signs, valid for twenty years. The CA's key is thrown away; the
# server's key is committed with the tests, so nothing outside them may ever trust this CA.
#
#   tools/tls/make_test_certs.sh [DIR]   (default crates/credence-cli/tests/fixtures/tls)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-crates/credence-cli/tests/fixtures/tls}"
mkdir -p "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7300 \
  -subj "/CN=Credence test CA (tests only)" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$work/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=localhost" -keyout "$dir/server.key" -out "$work/server.csr" 2>/dev/null
printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$dir/ca.pem" -CAkey "$work/ca.key" \
  -CAserial "$work/ca.srl" -CAcreateserial -days 7300 -extfile "$work/ext.cnf" -out "$dir/server.pem" 2>/dev/null
echo "wrote $dir/ca.pem, $dir/server.pem, $dir/server.key"
