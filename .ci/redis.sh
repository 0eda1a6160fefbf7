# Sourced by .ci/run (as root): start a Redis server on 127.0.0.1 for the online
# optimizer's stream tests and export TUNEPILOT_TEST_REDIS_URL. With the variable set,
# those tests fail rather than skip when the server cannot be reached.
if ! command -v redis-server >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
redis_port=6379
# 6379 may be taken (a system Redis, or another service): then any free port will do.
if (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null; then
    redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
redis-server --bind 127.0.0.1 --port "$redis_port" --daemonize yes --save "" --appendonly no \
    --logfile "/tmp/tunepilot-redis-$redis_port.log" --dir /tmp
for _ in $(seq 1 30); do
    redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.2
done
export TUNEPILOT_TEST_REDIS_URL="redis://127.0.0.1:${redis_port}/0"
