#!/bin/sh
# The broker's TLS, made once: a certificate authority that signs the broker's certificate (for the
# name the clients dial, kafka) and is then thrown away, so nothing else can ever be signed by it.
# Clients trust its certificate, which goes to a volume of its own; the broker's key stays in the
# broker's. Run by the `kafka-tls` service (as root, with no network): make-tls.sh SECRETS CA_DIR
set -eu
secrets=$1
ca_dir=$2
broker_uid=1000  # apache/kafka's appuser, who reads the keystore
if [ -s "$secrets/broker.p12" ] && [ -s "$ca_dir/ca.crt" ]; then
    echo "kafka-tls: keeping the broker's certificate and the CA's"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=ImagePipe Kafka CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey rsa:3072 -nodes -subj "/CN=kafka" -keyout "$work/broker.key" -out "$work/broker.csr" 2>/dev/null
printf 'subjectAltName=DNS:kafka\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$work/ext"
openssl x509 -req -in "$work/broker.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days 825 -extfile "$work/ext" -out "$work/broker.crt" 2>/dev/null
# apache/kafka's start script wants a keystore with a password in a file beside it; the password
# guards nothing the volume does not, and is made here, never chosen.
password=$(openssl rand -hex 24)
openssl pkcs12 -export -name kafka -in "$work/broker.crt" -inkey "$work/broker.key" -certfile "$work/ca.crt" \
    -passout "pass:$password" -out "$secrets/broker.p12"
printf '%s' "$password" >"$secrets/broker.password"
chown "$broker_uid:$broker_uid" "$secrets/broker.p12" "$secrets/broker.password"
chmod 0400 "$secrets/broker.p12" "$secrets/broker.password"
cp "$work/ca.crt" "$ca_dir/ca.crt"
chmod 0444 "$ca_dir/ca.crt"
echo "kafka-tls: made the broker's certificate for kafka, signed by a CA whose key is gone"
