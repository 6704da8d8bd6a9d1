#!/bin/bash
# The broker's volume, formatted before its first start with its SCRAM users in it: KRaft takes
# credentials at format time (`kafka-storage format --add-scram`), and the image's own start
# formats without them. It formats only an empty volume: the start then finds it "already
# formatted" and goes on. A password changed later is changed on the running broker, as admin:
#   kafka-configs.sh --bootstrap-server kafka:9092 --command-config admin.properties --alter \
#     --entity-type users --entity-name worker --add-config 'SCRAM-SHA-512=[password=...]'
# Run by the `kafka-format` service, with no network. Passwords must be URL-safe (no ',' ']' '='),
# as scripts/compose_env.py makes them.
set -euo pipefail
data=/var/lib/kafka/data
if [ -e "$data/meta.properties" ]; then
    echo "kafka-format: $data is formatted already; its users are kept"
    exit 0
fi
# What formatting reads: the node, its roles, its quorum and its log directory, as the broker's
# own environment (docker-compose.yml) sets them, and listeners enough to pass as a broker's.
cat >/tmp/format.properties <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
controller.listener.names=CONTROLLER
listeners=INTERNAL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093
listener.security.protocol.map=INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
log.dirs=$data
PROPERTIES
users=()
for user in admin dispatcher worker collector web; do
    variable="KAFKA_${user^^}_PASSWORD"
    users+=(--add-scram "SCRAM-SHA-512=[name=$user,password=${!variable:?$variable is not set}]")
done
/opt/kafka/bin/kafka-storage.sh format --cluster-id "$CLUSTER_ID" --config /tmp/format.properties "${users[@]}"
echo "kafka-format: formatted $data with the SCRAM-SHA-512 users admin, dispatcher, worker, collector, web"
