#!/bin/sh
# k_proxy --auth-mode fido2-direct against the virtual card: enrolment by
# makeCredential (attestation verified), login by a getAssertion verified
# against the stored credential, the runbook's directtest story end to end.
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

H='Content-Type: application/json'

need_vcard "vcard starts" --presence yes --state "$E2E_TMP/card.json"
start_k_server || { not_ok "k_server starts"; finish; exit 1; }
start_k_proxy --auth-mode fido2-direct --rp-id localhost --server-base-url "http://127.0.0.1:$KS_PORT" \
    --device "$VCARD_URI" --card-timeout-ms 3000 || { not_ok "k_proxy starts"; finish; exit 1; }
ok "k_server and k_proxy --auth-mode fido2-direct start"
KP_URL="http://127.0.0.1:$KP_PORT"

want "login before enrolment is 401" 401 /session/login -H "$H" -d '{"username":"directtest"}'
jcheck "401 user_not_enrolled" "j['error'] == 'user_not_enrolled'"
want "register directtest (makeCredential)" 201 /enroll/register -H "$H" -d '{"username":"directtest"}'
jcheck "a credential id and ES256" "len(j['credential_id']) > 20 and j['alg'] == -7 and j['auth_mode'] == 'fido2_assertion'"
want "login directtest (getAssertion verified)" 200 /session/login -H "$H" -d '{"username":"directtest"}'
jcheck "auth_mode fido2_assertion, as the prototype answered" "j['auth_mode'] == 'fido2_assertion'"
TOKEN=$(json_get "$T/out" "j['session_token']")
want "session status" 200 /session/status -H "Authorization: Bearer $TOKEN"
want "protected counter through k_server" 200 /resource/counter -H "Authorization: Bearer $TOKEN"
jcheck "counter 1" "j['counter'] == 1"
want "logout" 200 /session/logout -H "Authorization: Bearer $TOKEN"
want "post-logout protected access is 401" 401 /resource/counter -H "Authorization: Bearer $TOKEN"
if grep -q '"path":"/session/login","status":200.*"card_outcome":"ok"' "$KP_DIR/log"; then
    ok "the login log line records the card outcome"
else not_ok "login log line"; show_head 5 "$KP_DIR/log"; fi

want "a second login (signCount increases)" 200 /session/login -H "$H" -d '{"username":"directtest"}'
ctl presence no
want "the user refusing on the card is 401" 401 /session/login -H "$H" -d '{"username":"directtest"}'
jcheck "401 card_denied" "j['error'] == 'card_denied'"
ctl presence yes

# Another card (no state: it never saw the credential) cannot log directtest in.
stop_vcard
need_vcard "a second, blank card starts" --presence yes
stop_pid "$KP_PID"
"$BIN/k_proxy" --port "$KP_PORT" --port-file "$KP_DIR/port.again" --proxy-token "$CHAIN_TOKEN" \
    --state-db "$KP_DIR/k_proxy.db" --auth-mode fido2-direct \
    --server-base-url "http://127.0.0.1:$KS_PORT" --device "$VCARD_URI" \
    --card-timeout-ms 3000 2>>"$KP_DIR/log" &
KP_PID=$!
_E2E_PIDS="$_E2E_PIDS $KP_PID"
_wait_port_file "$KP_DIR/port.again" "$KP_PID" && ok "k_proxy restarts with the blank card" || not_ok "k_proxy restart"
code=$(kp /session/login -H "$H" -d '{"username":"directtest"}')
if [ "$code" = 401 ] && json_true "$T/out" "j['error'] in ('card_denied', 'assertion_invalid')"; then
    ok "a card without the credential cannot log directtest in (401 $(json_get "$T/out" "j['error']"))"
else not_ok "another card" "HTTP $code"; show_head 3 "$T/out"; fi
want "the enrolment survived the restart: registering again is 409" 409 /enroll/register -H "$H" -d '{"username":"directtest"}'

finish
