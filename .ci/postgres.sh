# Sourced by .ci/run (as root): start a PostgreSQL server on 127.0.0.1 for the sweep
# server tests and export TUNEPILOT_TEST_POSTGRES_URL. With the variable set, those
# tests fail rather than skip when the server cannot be reached.
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if [ -z "$(pg_lsclusters -h)" ]; then
    pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -1)" main >/dev/null
fi
read -r pg_version pg_cluster pg_port _ < <(pg_lsclusters -h | head -1)
# Debian's clusters listen on localhost only, with password logins from 127.0.0.1.
pg_ctlcluster "$pg_version" "$pg_cluster" status >/dev/null 2>&1 \
    || pg_ctlcluster "$pg_version" "$pg_cluster" start
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$pg_port" && break
    sleep 1
done
pg_sql() { su postgres -c "psql -p $pg_port -qtAc \"$1\""; }
[ "$(pg_sql "SELECT 1 FROM pg_roles WHERE rolname = 'tunepilot'")" = 1 ] \
    || pg_sql "CREATE ROLE tunepilot LOGIN PASSWORD 'tunepilot'"
[ "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = 'tunepilot_test'")" = 1 ] \
    || su postgres -c "createdb -p $pg_port -O tunepilot tunepilot_test"
# A throwaway test database: commits need not wait for the disk.
pg_sql "ALTER DATABASE tunepilot_test SET synchronous_commit = off"
export TUNEPILOT_TEST_POSTGRES_URL="postgresql://tunepilot:tunepilot@127.0.0.1:${pg_port}/tunepilot_test"
