#!/bin/sh
# k_proxy's write-ahead log stays bounded under a steady stream of logins:
# its background checkpoints copy the log into the database and rewind it,
# although some login always writes (before, the log was never rewound and
# grew by about 20 KiB a login, to gigabytes, while the database file stayed
# at one page; every read then searched a longer log index).
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

LOGINS=${KPX_WAL_LOGINS:-3000}
need_vcard "vcard starts" --presence yes
start_k_server || { not_ok "k_server starts"; finish; exit 1; }
ok "k_server starts"
start_k_proxy --server-base-url "http://127.0.0.1:$KS_PORT" --device "$VCARD_URI" \
    --login-limit-user 0 --login-limit-address 0 || { not_ok "k_proxy starts"; finish; exit 1; }
ok "k_proxy starts"

# LOGINS logins over 4 kept-alive connections, as fast as they are answered
# (bounded: 120 s in all); prints the count of 200s and of the rest
timeout -k 5 120 "$PY" - "$KP_PORT" "$LOGINS" >"$E2E_TMP/wal.logins" 2>&1 <<'EOF'
import http.client, sys, threading
port, total = int(sys.argv[1]), int(sys.argv[2])
counts = {"ok": 0, "other": 0}
lock = threading.Lock()
def run(n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(n):
        c.request("POST", "/session/login", body='{"username":"wal"}',
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        with lock:
            counts["ok" if r.status == 200 else "other"] += 1
threads = [threading.Thread(target=run, args=(total // 4,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(counts["ok"], counts["other"])
EOF
read -r N_OK N_OTHER <"$E2E_TMP/wal.logins" 2>/dev/null
check "$LOGINS logins answered 200: ${N_OK:-none} ok, ${N_OTHER:-?} other" \
    test "${N_OK:-0}" -eq $((LOGINS / 4 * 4))

# the background thread checkpoints once a second: give it two turns
sleep 2.5
WAL=$(stat -c %s "$KP_DIR/k_proxy.db-wal" 2>/dev/null || echo 0)
DB=$(stat -c %s "$KP_DIR/k_proxy.db" 2>/dev/null || echo 0)
# 1000 frames of 4 KiB (the rewind threshold) and their headers
check "the log is rewound once idle: k_proxy.db-wal $WAL bytes <= 4.2 MB" test "$WAL" -le 4200000
check "the logins reached the database file: k_proxy.db $DB bytes > 256 KiB" test "$DB" -gt 262144
# what was written is there: one more login works, and a restart keeps the sessions
code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$KP_PORT/session/login" \
    -H 'Content-Type: application/json' -d '{"username":"wal"}')
check "a login after the load: HTTP $code" test "$code" = 200
finish
