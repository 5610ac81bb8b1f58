#!/usr/bin/env bash
# Kafka's own command-line tools without a Kafka distribution: runs the tool's main class from the
# jars install.sh put in .cache/kafka, against $KAFKA_BROKERS (127.0.0.1:9092 unless set) unless
# the arguments name a server themselves. Tools log warnings to stderr only.
#
#   bash scripts/kafka-tool.sh topics --list
#   bash scripts/kafka-tool.sh topics --create --topic t --partitions 4
#   bash scripts/kafka-tool.sh consumer-groups --describe --group mdp-consumers
#   bash scripts/kafka-tool.sh producer-perf-test --topic t --num-records 100000 --record-size 250 --throughput -1
#
# MDP_KAFKA_TOOL_OPTS replaces the JVM flags (default: -Xmx256m -XX:+UseSerialGC).
set -euo pipefail
source "$(dirname "$0")/env.sh"

usage() {
  cat >&2 <<'EOF'
usage: bash scripts/kafka-tool.sh TOOL [ARGS...]    (TOOL --help for its options)
tools:
  topics               create, list, describe, alter, delete topics      (TopicCommand)
  consumer-groups      list, describe, reset offsets of consumer groups  (ConsumerGroupCommand)
  console-consumer     print a topic's records                           (ConsoleConsumer)
  console-producer     send lines from stdin as records                  (ConsoleProducer)
  get-offsets          a topic's offsets per partition                   (GetOffsetShell)
  delete-records       delete records below an offset                    (DeleteRecordsCommand)
  producer-perf-test   producer throughput and latency                   (ProducerPerformance)
  consumer-perf-test   consumer throughput                               (ConsumerPerformance)
  configs              describe or alter topic/broker/group configs      (ConfigCommand)
  broker-api-versions  the API versions the broker serves                (BrokerApiVersionsCommand)
  metadata-quorum      the KRaft quorum's status                         (MetadataQuorumCommand)
  transactions         list, describe, abort transactions                (TransactionsCommand)
  storage              format or inspect a data dir (no server)          (kafka.tools.StorageTool)
EOF
}

[ $# -gt 0 ] || { usage; exit 2; }
tool=$1; shift
# Main classes as of Kafka 4.1 (kafka-tools and kafka_2.13 jars).
case "$tool" in
  topics) class=org.apache.kafka.tools.TopicCommand ;;
  consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  console-producer) class=org.apache.kafka.tools.ConsoleProducer ;;
  get-offsets) class=org.apache.kafka.tools.GetOffsetShell ;;
  delete-records) class=org.apache.kafka.tools.DeleteRecordsCommand ;;
  producer-perf-test) class=org.apache.kafka.tools.ProducerPerformance ;;
  consumer-perf-test) class=org.apache.kafka.tools.ConsumerPerformance ;;
  configs) class=kafka.admin.ConfigCommand ;;
  broker-api-versions) class=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
  metadata-quorum) class=org.apache.kafka.tools.MetadataQuorumCommand ;;
  transactions) class=org.apache.kafka.tools.TransactionsCommand ;;
  storage) class=kafka.tools.StorageTool ;;
  -h | --help | help) usage; exit 0 ;;
  *) log "unknown Kafka tool: $tool"; usage; exit 2 ;;
esac
kafka_libs_ok || { log "Kafka $MDP_KAFKA_VERSION jars missing in $MDP_KAFKA_HOME: run scripts/install.sh"; exit 1; }

# The server to talk to, unless the arguments give one (or a config file that may).
args=("$@")
has_arg() { local a p; for a in "${args[@]}"; do for p in "$@"; do [[ $a == "$p"* ]] && return 0; done; done; return 1; }
case "$tool" in
  storage) ;;
  producer-perf-test)
    # No --bootstrap-server here: the producer's own bootstrap.servers, added to --producer-props
    # (a second --producer-props would replace the first).
    if ! has_arg bootstrap.servers= --producer.config; then
      with=() added=
      for a in "${args[@]}"; do
        with+=("$a")
        if [ "$a" = --producer-props ] && [ -z "$added" ]; then with+=("bootstrap.servers=$KAFKA_BROKERS"); added=1; fi
      done
      [ -n "$added" ] || with+=(--producer-props "bootstrap.servers=$KAFKA_BROKERS")
      args=("${with[@]}")
    fi
    ;;
  *) has_arg --bootstrap-server --bootstrap-controller || args=(--bootstrap-server "$KAFKA_BROKERS" "${args[@]}") ;;
esac

# shellcheck disable=SC2086 # MDP_KAFKA_TOOL_OPTS is a list of JVM flags
exec java ${MDP_KAFKA_TOOL_OPTS:--Xmx256m -XX:+UseSerialGC} -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$MDP_KAFKA_HOME/config/log4j2-tools.properties" \
  -cp "$MDP_KAFKA_HOME/libs/*" "$class" "${args[@]}"
