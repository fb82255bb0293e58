#!/bin/sh
# End-to-end: rawctap config (authenticatorConfig) and rawctap pin retries /
# uv-retries against the virtual card over UDP: set-min-pin-length then
# `rawctap info --json` reports it, toggle-always-uv reported, enterprise
# attestation enabled, the settings kept in --state, retries counting down
# with wrong PINs to the soft block (power cycle) and the hard block (reset),
# and Debian's python-fido2 (Config, ClientPin retries) as an independent
# client of the same card.
# shellcheck disable=SC1091,SC2086 # sourced helpers; $D split on purpose
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.sh
. tests/interop/e2e_helpers.sh
tool_test "$BIN/rawctap"

jcheck_show() {
    show_head 5 "$T/out"
    show_head 5 "$T/err"
}

# ---- command line, no card ----
run "config --help exits 0" 0 config --help
grep_out "config --help names the subcommands" "set-min-pin-length"
run "config without a subcommand is a usage error" 2 --json config
jcheck "usage error as JSON" 'j["ok"] is False and j["exit"] == 2'
run "set-min-pin-length 3 is below 4" 2 config set-min-pin-length 3
run "set-min-pin-length 64 is above 63" 2 config set-min-pin-length 64
run "--rp-id goes with set-min-pin-length only" 2 config toggle-always-uv --rp-id a.example
run "unknown config subcommand" 2 config frobnicate
run "pin retries takes no operand" 2 pin retries extra

# ---- a card that offers authenticatorConfig, no PIN yet ----
STATE="$T/card.state"
need_vcard "vcard ctap2.1-full starts" --personality ctap2.1-full --presence yes --state "$STATE"
D="--device $VCARD_URI $FAST"
run "info" 0 $D --json info
jcheck "info: authnrCfg, setMinPINLength, alwaysUv false, min 4" \
    'j["options"]["authnrCfg"] is True and j["options"]["setMinPINLength"] is True and j["options"]["alwaysUv"] is False and j["min_pin_length"] == 4'
run "toggle-always-uv without a PIN" 0 $D --json config toggle-always-uv
jcheck "toggle-always-uv reports alwaysUv true" 'j["always_uv"] is True and j["subcommand"] == "toggle-always-uv"'
run "info after toggle" 0 $D --json info
jcheck "info reports alwaysUv true" 'j["options"]["alwaysUv"] is True and j["options"]["makeCredUvNotRqd"] is False'
run "toggle again without a token is refused" 4 $D --json config toggle-always-uv
jcheck "refusal named PUAT_REQUIRED" 'j["error_name"] == "CTAP2_ERR_PUAT_REQUIRED"'
grep_err "the refusal says to give the PIN" "give it with --pin"

run "pin set 1234" 0 $D pin set --new-pin 1234
run "toggle-always-uv with the PIN" 0 $D --json config toggle-always-uv --pin 1234
jcheck "alwaysUv back to false" 'j["always_uv"] is False'
run "set-min-pin-length 6 --rp-id example.org" 0 $D --json config set-min-pin-length 6 \
    --rp-id example.org --pin 1234
jcheck "min 6, the 4-digit PIN must change" \
    'j["min_pin_length"] == 6 and j["force_pin_change"] is True and j["rp_ids"] == ["example.org"]'
grep_err "the forced change is said" "wants the PIN changed"
run "info after set-min-pin-length" 0 $D --json info
jcheck "rawctap info --json reports min_pin_length 6 and the forced change" \
    'j["min_pin_length"] == 6 and j["force_pin_change"] is True and j["max_rpids_for_set_min_pin_length"] == 4'
"$CTL" --control "$VCARD_CTL" --json status >"$T/out" 2>"$T/err"
jcheck "vcard-ctl status shows the settings" \
    'j["card"]["min_pin_length"] == 6 and j["card"]["force_pin_change"] is True and j["card"]["always_uv"] is False and j["card"]["enterprise_attestation"] is False'
run "a token while the PIN must change" 4 $D --json config enable-enterprise-attestation --pin 1234
jcheck "refused with PIN_POLICY_VIOLATION" 'j["error_name"] == "CTAP2_ERR_PIN_POLICY_VIOLATION"'
run "pin change to 5 digits is refused" 2 $D --json pin change --pin 1234 --new-pin 12345
jcheck "named PIN_TOO_SHORT, nothing sent" 'j["error_name"] == "PIN_TOO_SHORT" and "minimum is 6" in j["error"]'
run "pin change to 6 digits" 0 $D pin change --pin 1234 --new-pin 123456
run "set-min-pin-length 5 cannot lower it" 4 $D --json config set-min-pin-length 5 --pin 123456
grep_err "the refusal names reset" "only authenticatorReset lowers it"
run "enable-enterprise-attestation" 0 $D --json config enable-enterprise-attestation --pin 123456
jcheck "enterprise attestation enabled, no forced change" \
    'j["enterprise_attestation"] is True and j["force_pin_change"] is False'
run "wrong PIN for config" 4 $D --json config toggle-always-uv --pin 999999
jcheck "wrong PIN named" 'j["error_name"] == "CTAP2_ERR_PIN_INVALID"'

# retries count down; the third wrong PIN in a row is a soft block
run "pin retries" 0 $D --json pin retries
jcheck "7 left after one wrong PIN" 'j["retries"] == 7 and j["pin_state"] == "ok" and j["power_cycle_state"] is False'
run "second wrong PIN" 4 $D pin change --pin 999999 --new-pin 7654321
run "pin retries after two" 0 $D --json pin retries
jcheck "6 left" 'j["retries"] == 6'
run "third wrong PIN" 4 $D pin change --pin 999999 --new-pin 7654321
run "pin retries while soft-blocked" 4 $D --json pin retries
jcheck "soft block: 5 left, powerCycleState, PIN_AUTH_BLOCKED" \
    'j["retries"] == 5 and j["power_cycle_state"] is True and j["pin_state"] == "blocked-until-power-cycle" and j["error_name"] == "PIN_AUTH_BLOCKED" and "power-cycle" in j["fix"]'
grep_err "soft block names the power cycle" "blocked until the card is power-cycled"

# a power cycle (vcard restarted on the same state) lifts it; settings kept
stop_vcard
need_vcard "vcard restarts on its state" --personality ctap2.1-full --presence yes --state "$STATE"
D="--device $VCARD_URI $FAST"
run "pin retries after the power cycle" 0 $D --json pin retries
jcheck "5 left, no longer blocked" 'j["retries"] == 5 and j["pin_state"] == "ok"'
run "info from the state file" 0 $D --json info
jcheck "min 6 and ep kept in --state" 'j["min_pin_length"] == 6 and j["options"]["ep"] is True'
stop_vcard

# ---- a hard block: only reset, and what it erases ----
need_vcard "vcard pin-blocked starts" --personality pin-blocked
D="--device $VCARD_URI $FAST"
run "pin retries on a blocked PIN" 4 $D --json pin retries
jcheck "hard block: 0 left, PIN_BLOCKED" \
    'j["retries"] == 0 and j["pin_state"] == "blocked" and j["error_name"] == "PIN_BLOCKED" and "erases every credential" in j["fix"]'
grep_err "hard block names reset" "nothing but authenticatorReset"
run "config on a card without authenticatorConfig" 4 $D --json config toggle-always-uv
jcheck "CONFIG_NOT_OFFERED" 'j["error_name"] == "CONFIG_NOT_OFFERED"'
run "uv-retries without built-in UV" 4 $D --json pin uv-retries
jcheck "named INVALID_SUBCOMMAND" 'j["error_name"] == "CTAP2_ERR_INVALID_SUBCOMMAND"'
stop_vcard

need_vcard "vcard with built-in UV starts" --uv
D="--device $VCARD_URI $FAST"
run "pin uv-retries" 0 $D --json pin uv-retries
jcheck "8 UV attempts left" 'j["uv_retries"] == 8 and j["uv_state"] == "ok"'
stop_vcard

# ---- independent client: python-fido2's Config and ClientPin ----
need_vcard "vcard for python-fido2 starts" --personality ctap2.1-full --presence yes
run_client python-fido2 ctap2.1-full "Config, retries" \
    $PYCLIENT/python_fido2_config.py 127.0.0.1 "$VCARD_PORT" config
stop_vcard
need_vcard "vcard --uv for python-fido2 starts" --personality ctap2.1-full --uv
run_client python-fido2 "ctap2.1-full --uv" "get_uv_retries" \
    $PYCLIENT/python_fido2_config.py 127.0.0.1 "$VCARD_PORT" uv
stop_vcard

interop_table
finish
