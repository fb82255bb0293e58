# Debian's fido2-token against vcard on real hidraw (sourced by guest.sh;
# busybox sh): an independent client of libfido2 and rawctap must agree on
# the same card. vcard plays ctap2.1-full (credMgmt, authnrCfg, largeBlobs)
# with --state and a PIN; rawctap makes resident credentials and each
# fido2-token feature is checked against rawctap's view of the card:
#   -L -r / -L -k   list what rawctap created (rp id hashes, credential ids)
#   -D -i           deletes one; rawctap cred list no longer finds it, nor
#                   does a get-assertion naming its id
#   -S -c           renames a credential's user; rawctap cred list shows it
#   -S -u / -S -a   alwaysUv and enterprise attestation in rawctap info
#   -I -c           the same existing/remaining counts as cred metadata
#   -S -l / -S -m   minimum PIN length (rawctap info) and the rp ids that
#                   may read it (rawctap's minPinLength extension)
#   -S -b / -G -b   large blobs both ways (zlib-compressed per-credential
#                   blobs: libfido2 writes raw DEFLATE, kcard reads it)
#   -R              refused outside vcard's reset window, done inside it
#                   (a replug is a power cycle); rawctap then sees an empty card
# fido2-token reads the PIN with readpassphrase: the guest has no
# controlling tty (and setsid makes sure), so it reads stdin, one line per
# prompt. Every command runs under a deadline.
# shellcheck disable=SC2016 # conditions in single quotes are evaluated later
if [ -x /bin/fido2-token ] && [ -x /bin/rawctap ] && [ -x /bin/vcard ] && [ -x /bin/vcard-ctl ]; then
    FT_SOCK=/tmp/ft.sock
    FT_STATE=/tmp/ft.state
    FT_PIN=271828
    FT_IN=/tmp/ft.pin
    FT_OUT=/tmp/ft.out
    FT_ERR=/tmp/ft.err
    FT_RP1=example.org
    FT_RP2=example.net
    # one PIN line per prompt fido2-token may show (it asks again after a
    # failed attempt without a PIN)
    printf '%s\n%s\n%s\n%s\n' "$FT_PIN" "$FT_PIN" "$FT_PIN" "$FT_PIN" >"$FT_IN"

    ft_now_cs() {
        read -r ft_up _ </proc/uptime
        echo "${ft_up%.*}${ft_up#*.}"
    }
    ft_start=$(ft_now_cs)

    # ft_run SECS CMD...: CMD with stdin from $FT_IN, stdout in $FT_OUT and
    # stderr (fido2-token's PIN prompt, its errors) in $FT_ERR, killed
    # after SECS; status in ft_rc (124: killed)
    ft_run() {
        ft_secs=$1
        shift
        : >"$FT_OUT"
        : >"$FT_ERR"
        setsid "$@" <"$FT_IN" >"$FT_OUT" 2>"$FT_ERR" &
        ft_pid=$!
        if wait_for "$ft_secs" stopped "$ft_pid"; then
            wait "$ft_pid"
            ft_rc=$?
        else
            kill -9 "$ft_pid" 2>/dev/null
            wait "$ft_pid" 2>/dev/null
            ft_rc=124
        fi
    }
    # ft_token ARGS...: fido2-token ARGS on the card's node (last argument)
    ft_token() { ft_run 30 fido2-token "$@" "/dev/$ft_node"; }
    # ft_raw ARGS...: rawctap --json on the card's node
    ft_raw() { ft_run 30 rawctap --json --device "/dev/$ft_node" "$@"; }
    # ft_dump LABEL: the last command's output, indented, after a failure
    ft_dump() {
        sed "s/^/#   $1: /" "$FT_OUT"
        sed "s/^/#   $1 (stderr): /" "$FT_ERR"
    }
    # ft_said TEXT: the last command's stdout or stderr has TEXT
    ft_said() { grep -q "$1" "$FT_OUT" "$FT_ERR"; }
    # ft_check NAME CMD...: like check, but shows the last output on
    # failure; ft_check NAME 'CONDITION' evaluates one shell condition
    # (with && inside) in this shell
    ft_eval() {
        if [ $# = 1 ]; then eval "$1"; else "$@"; fi
    }
    ft_check() {
        ft_name=$1
        shift
        if ft_eval "$@"; then
            ok "$ft_name"
        else
            not_ok "$ft_name"
            ft_dump out
        fi
    }
    # ft_json KEY: the first "KEY":value in $FT_OUT (a string or a number)
    ft_json() { grep -oE "\"$1\":(\"[^\"]*\"|-?[0-9]+|true|false)" "$FT_OUT" | head -n 1 | sed 's/^"[^"]*"://; s/"//g'; }
    # every credential id rawctap cred list printed (base64url)
    ft_json_ids() { grep -oE '"cred_id":"[^"]*"' "$FT_OUT" | sed 's/^"cred_id":"//; s/"$//' | sort; }
    # base64 (fido2-token) <-> base64url without padding (rawctap)
    ft_url_of_std() { echo "$1" | tr '/+' '_-' | tr -d '='; }
    ft_std_of_url() {
        ft_s=$(echo "$1" | tr '_-' '/+')
        case $((${#ft_s} % 4)) in
        2) ft_s="$ft_s==" ;;
        3) ft_s="$ft_s=" ;;
        esac
        echo "$ft_s"
    }
    # ft_hex_of_std B64: the bytes as lowercase hex
    ft_hex_of_std() { echo "$1" | base64 -d | hexdump -v -e '/1 "%02x"'; }
    ft_node_now() {
        for ft_n in /sys/class/hidraw/hidraw*; do
            [ -e "$ft_n" ] || continue
            ft_b=$(basename "$ft_n")
            if is_fido "$ft_b" && grep -q 'HID_ID=.*00001209:0000000C' "$ft_n/device/uevent" 2>/dev/null; then
                echo "$ft_b"
                return 0
            fi
        done
        return 1
    }
    ft_has_node() { ft_node_now >/dev/null; }
    # the HID device behind a hidraw node (0003:1209:000C.NNNN): a replug
    # may reuse the node's name once the old device is gone, never this
    ft_hid_dev() { basename "$(readlink -f "/sys/class/hidraw/$1/device")"; }
    ft_new_dev() { ft_m=$(ft_node_now) && [ "$(ft_hid_dev "$ft_m")" != "$1" ]; }
    ft_reset_allowed() {
        vcard-ctl --control "$FT_SOCK" status 2>/dev/null | grep -q "\"reset_allowed\": *$1"
    }
    # ft_make RP USER: a resident credential with a largeBlobKey; its id
    # (base64url) in ft_id
    ft_make() {
        ft_raw make-credential --rp-id "$1" --user "$2" --rk --large-blob-key --pin "$FT_PIN"
        ft_id=$(ft_json cred_id)
        [ "$ft_rc" = 0 ] && [ -n "$ft_id" ]
    }
    # ft_counts_agree: fido2-token -I -c and rawctap cred metadata give the
    # same existing/remaining counts (in ft_exist, ft_remain)
    ft_counts_agree() {
        ft_token -I -c
        [ "$ft_rc" = 0 ] || return 1
        ft_t_exist=$(sed -n 's/^existing rk(s): //p' "$FT_OUT")
        ft_t_remain=$(sed -n 's/^remaining rk(s): //p' "$FT_OUT")
        ft_raw cred metadata --pin "$FT_PIN"
        [ "$ft_rc" = 0 ] || return 1
        ft_exist=$(ft_json existing)
        ft_remain=$(ft_json remaining)
        echo "# fido2-token -I -c: $ft_t_exist existing, $ft_t_remain remaining; rawctap cred metadata: $ft_exist, $ft_remain"
        [ -n "$ft_exist" ] && [ "$ft_t_exist" = "$ft_exist" ] && [ "$ft_t_remain" = "$ft_remain" ]
    }

    ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null
    rm -f "$FT_STATE"
    : >/tmp/ft.vcard.log
    # a reset window of 8 s: long enough for a reset right after a replug
    # under a slow TCG guest, short enough to be shut before the -R test
    vcard --listen 127.0.0.1:0 --uhid --personality ctap2.1-full --state "$FT_STATE" \
        --control "$FT_SOCK" --reset-window-ms 8000 >/tmp/ft.vcard.log 2>&1 &
    ft_vcard=$!
    if wait_for 10 log_has /tmp/ft.vcard.log 'listening on udp' && wait_for 5 ft_has_node; then
        ok "fido2-token: vcard ctap2.1-full --uhid --state gives a FIDO node"
    else
        not_ok "fido2-token: vcard ctap2.1-full --uhid --state gives a FIDO node"
        sed 's/^/#   vcard: /' /tmp/ft.vcard.log
    fi
    ft_node=$(ft_node_now)
    echo "# fido2-token: card on /dev/$ft_node"

    ft_raw pin set --new-pin "$FT_PIN"
    ft_check "rawctap pin set" [ "$ft_rc" = 0 ]
    ft_check "rawctap make-credential --rk --large-blob-key ($FT_RP1, alice)" ft_make "$FT_RP1" alice
    ft_alice=$ft_id
    ft_check "rawctap make-credential --rk --large-blob-key ($FT_RP1, bob)" ft_make "$FT_RP1" bob
    ft_bob=$ft_id
    ft_check "rawctap make-credential --rk --large-blob-key ($FT_RP2, carol)" ft_make "$FT_RP2" carol
    ft_carol=$ft_id

    # --- -L -r: the relying parties, with the same rp id hashes
    ft_raw cred rps --pin "$FT_PIN"
    ft_rps_json=$(grep -oE '"id":"[^"]*","id_hash":"[0-9a-f]*"' "$FT_OUT" | sed 's/"id":"//; s/","id_hash":"/ /; s/"$//' | sort)
    ft_token -L -r
    ft_rps_token=""
    ft_rps_lines=0
    while read -r _ ft_h ft_rp; do
        [ -n "$ft_rp" ] || continue
        ft_rps_lines=$((ft_rps_lines + 1))
        ft_rps_token="$ft_rps_token$ft_rp $(ft_hex_of_std "$ft_h")
"
    done <"$FT_OUT"
    ft_rps_token=$(printf '%s' "$ft_rps_token" | sort)
    if [ "$ft_rc" = 0 ] && [ "$ft_rps_lines" = 2 ] && [ -n "$ft_rps_json" ] &&
        [ "$ft_rps_token" = "$ft_rps_json" ]; then
        ok "fido2-token -L -r lists the 2 rps rawctap created, same SHA-256 ids as cred rps"
    else
        not_ok "fido2-token -L -r lists the 2 rps rawctap created (rc $ft_rc)"
        ft_dump "-L -r"
        echo "$ft_rps_json" | sed 's/^/#   cred rps: /'
    fi

    # --- -L -k: one rp's credentials, the ids rawctap made
    ft_token -L -k "$FT_RP1"
    ft_ids_token=$(while read -r _ ft_i _; do [ -n "$ft_i" ] && ft_url_of_std "$ft_i"; done <"$FT_OUT" | sort)
    ft_ids_made=$(printf '%s\n%s\n' "$ft_alice" "$ft_bob" | sort)
    if [ "$ft_rc" = 0 ] && [ -n "$ft_alice" ] && [ "$ft_ids_token" = "$ft_ids_made" ]; then
        ok "fido2-token -L -k $FT_RP1 lists exactly alice's and bob's credential ids"
    else
        not_ok "fido2-token -L -k $FT_RP1 lists exactly alice's and bob's credential ids (rc $ft_rc)"
        ft_dump "-L -k"
        echo "$ft_ids_made" | sed 's/^/#   made: /'
    fi
    ft_token -L -k "$FT_RP2"
    ft_check "fido2-token -L -k $FT_RP2 lists carol's credential alone" \
        '[ "$ft_rc" = 0 ] && [ "$(wc -l <"$FT_OUT")" = 1 ] &&
        [ "$(ft_url_of_std "$(cut -d " " -f 2 "$FT_OUT")")" = "$ft_carol" ]'

    # --- -I -c: the counts
    ft_check "fido2-token -I -c and rawctap cred metadata agree (3 resident credentials)" \
        'ft_counts_agree && [ "$ft_exist" = 3 ]'
    ft_remain_before=$ft_remain

    # --- -D -i: fido2-token deletes alice's credential, rawctap no longer finds it
    ft_token -D -i "$(ft_std_of_url "$ft_alice")"
    ft_check "fido2-token -D -i deletes alice's credential" [ "$ft_rc" = 0 ]
    ft_raw cred list --rp-id "$FT_RP1" --pin "$FT_PIN"
    ft_left=$(ft_json_ids)
    if [ "$ft_rc" = 0 ] && [ "$ft_left" = "$ft_bob" ]; then
        ok "rawctap cred list --rp-id $FT_RP1 no longer finds it (bob's alone is left)"
    else
        not_ok "rawctap cred list --rp-id $FT_RP1 no longer finds it (rc $ft_rc)"
        ft_dump "cred list"
    fi
    if ft_counts_agree && [ "$ft_exist" = 2 ] && [ "$ft_remain" = $((ft_remain_before + 1)) ]; then
        ok "after the delete both say 2 existing, one more remaining"
    else
        not_ok "after the delete both say 2 existing, one more remaining"
        ft_dump out
    fi

    # a deleted credential does not answer by its id either
    ft_raw get-assertion --rp-id "$FT_RP1" --cred-id "$ft_alice" --pin "$FT_PIN"
    ft_check "alice's deleted credential does not answer by its id (NO_CREDENTIALS)" \
        '[ "$ft_rc" = 4 ] && ft_said CTAP2_ERR_NO_CREDENTIALS'

    # --- -S -c: fido2-token renames bob's credential, rawctap sees the new names
    ft_raw cred list --rp-id "$FT_RP1" --pin "$FT_PIN"
    ft_bob_uid=$(ft_json user_id)
    ft_token -S -c -i "$(ft_std_of_url "$ft_bob")" -k "$(ft_std_of_url "$ft_bob_uid")" \
        -n robert -p "Robert B"
    ft_check "fido2-token -S -c renames bob's credential" [ "$ft_rc" = 0 ]
    ft_raw cred list --rp-id "$FT_RP1" --pin "$FT_PIN"
    ft_check "rawctap cred list then shows user robert, display name Robert B" \
        '[ "$ft_rc" = 0 ] && [ "$(ft_json user_name)" = robert ] &&
        [ "$(ft_json display_name)" = "Robert B" ]'

    # --- -S -u and -S -a: alwaysUv and enterprise attestation, as rawctap info says
    ft_token -S -u
    ft_check "fido2-token -S -u toggles alwaysUv" [ "$ft_rc" = 0 ]
    ft_raw info
    ft_check "rawctap info then reports alwaysUv true" grep -q '"alwaysUv":true' "$FT_OUT"
    ft_raw config toggle-always-uv --pin "$FT_PIN"
    ft_check "rawctap config toggle-always-uv turns it off again" [ "$ft_rc" = 0 ]
    ft_token -I
    ft_check "fido2-token -I agrees: noalwaysUv" grep -q 'noalwaysUv' "$FT_OUT"
    ft_token -S -a
    ft_check "fido2-token -S -a enables enterprise attestation" [ "$ft_rc" = 0 ]
    ft_raw info
    ft_check "rawctap info then reports ep true" grep -q '"ep":true' "$FT_OUT"

    # --- -S -l: the minimum PIN length, as rawctap info reports it
    ft_raw info
    ft_min_before=$(ft_json min_pin_length)
    ft_token -S -l 6
    ft_check "fido2-token -S -l 6 (minimum PIN length was $ft_min_before)" [ "$ft_rc" = 0 ]
    ft_raw info
    ft_check "rawctap info then reports min_pin_length 6" \
        '[ "$(ft_json min_pin_length)" = 6 ] && [ "$ft_min_before" != 6 ]'
    ft_token -I
    ft_check "fido2-token -I agrees: minpinlen: 6" grep -qx 'minpinlen: 6' "$FT_OUT"
    # --- -S -m: the rp ids that may read it (the minPinLength extension)
    ft_raw make-credential --rp-id "$FT_RP2" --min-pin-length
    ft_check "before -S -m, $FT_RP2 gets no minPinLength" \
        '[ "$ft_rc" = 0 ] && ! grep -q ext_min_pin_length "$FT_OUT"'
    ft_token -S -m "$FT_RP2"
    ft_check "fido2-token -S -m $FT_RP2" [ "$ft_rc" = 0 ]
    ft_raw make-credential --rp-id "$FT_RP2" --min-pin-length
    ft_check "then rawctap make-credential --min-pin-length for $FT_RP2 reads 6" \
        '[ "$ft_rc" = 0 ] && [ "$(ft_json ext_min_pin_length)" = 6 ]'

    # --- large blobs, fido2-token -> rawctap (a compressible blob: libfido2
    # deflates it, kcard inflates it)
    {
        echo "kcard fido2-token interop blob"
        for ft_k in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "line $ft_k: the quick brown fox jumps over the lazy dog"; done
    } >/tmp/ft.blob1
    ft_token -S -b -n "$FT_RP1" -i "$(ft_std_of_url "$ft_bob")" /tmp/ft.blob1
    ft_check "fido2-token -S -b -n $FT_RP1 -i bob ($(wc -c </tmp/ft.blob1) bytes)" [ "$ft_rc" = 0 ]
    rm -f /tmp/ft.got1
    ft_raw large-blob get --cred-id "$ft_bob" --rp-id "$FT_RP1" --pin "$FT_PIN" --file /tmp/ft.got1
    ft_check "rawctap large-blob get --cred-id bob reads the same bytes" \
        '[ "$ft_rc" = 0 ] && cmp -s /tmp/ft.blob1 /tmp/ft.got1'
    ft_raw large-blob get
    # smaller than the blob itself: libfido2 compressed it
    ft_check "the array holds one entry, its hash right, smaller than the blob (compressed)" \
        '[ "$ft_rc" = 0 ] && [ "$(ft_json entries)" = 1 ] && [ "$(ft_json hash_ok)" = true ] &&
        [ "$(ft_json size)" -lt "$(wc -c </tmp/ft.blob1)" ]'
    # --- rawctap -> fido2-token
    {
        printf 'written by rawctap\000\001\002'
        for ft_k in 1 2 3 4 5 6 7 8; do echo "rawctap large-blob set, entry line $ft_k"; done
    } >/tmp/ft.blob2
    ft_raw large-blob set --cred-id "$ft_carol" --rp-id "$FT_RP2" --pin "$FT_PIN" --file /tmp/ft.blob2
    ft_check "rawctap large-blob set --cred-id carol ($(wc -c </tmp/ft.blob2) bytes)" [ "$ft_rc" = 0 ]
    ft_raw large-blob get
    ft_check "two entries now, the array smaller than both blobs (rawctap compresses too)" \
        '[ "$ft_rc" = 0 ] && [ "$(ft_json entries)" = 2 ] &&
        [ "$(ft_json size)" -lt $(($(wc -c </tmp/ft.blob1) + $(wc -c </tmp/ft.blob2))) ]'
    rm -f /tmp/ft.got2
    ft_token -G -b -n "$FT_RP2" /tmp/ft.got2
    ft_check "fido2-token -G -b -n $FT_RP2 reads the same bytes" \
        '[ "$ft_rc" = 0 ] && cmp -s /tmp/ft.blob2 /tmp/ft.got2'
    rm -f /tmp/ft.got1
    ft_token -G -b -n "$FT_RP1" -i "$(ft_std_of_url "$ft_bob")" /tmp/ft.got1
    ft_check "fido2-token -G -b still reads bob's blob beside carol's" \
        '[ "$ft_rc" = 0 ] && cmp -s /tmp/ft.blob1 /tmp/ft.got1'

    # --- -R: refused once the reset window has passed, done within it
    ft_check "vcard's 8 s reset window has passed" wait_for 15 ft_reset_allowed false
    ft_token -R
    ft_check "fido2-token -R outside the reset window fails (FIDO_ERR_NOT_ALLOWED)" \
        '[ "$ft_rc" != 0 ] && [ "$ft_rc" != 124 ] && ft_said FIDO_ERR_NOT_ALLOWED'
    ft_raw cred metadata --pin "$FT_PIN"
    ft_check "...and the card keeps its 2 credentials" '[ "$(ft_json existing)" = 2 ]'
    ft_old=$(ft_hid_dev "$ft_node")
    ft_check "vcard-ctl replug (a power cycle: the window opens)" \
        'vcard-ctl --control "$FT_SOCK" replug >/dev/null'
    if wait_for 5 ft_new_dev "$ft_old"; then
        ft_node=$(ft_node_now)
        ft_t0=$(ft_now_cs)
        ft_token -R
        ft_t1=$(ft_now_cs)
        ft_check "fido2-token -R on /dev/$ft_node ($(ft_hid_dev "$ft_node")) within the window ($((ft_t1 - ft_t0))0 ms)" [ "$ft_rc" = 0 ]
    else
        not_ok "the replugged card comes back as a new HID device (was $ft_old)"
    fi
    ft_raw pin status
    ft_check "after -R rawctap sees no PIN" \
        '[ "$ft_rc" = 0 ] && [ "$(ft_json pin_set)" = false ]'
    ft_raw large-blob get
    ft_check "after -R the large-blob array is the initial empty one" \
        '[ "$ft_rc" = 0 ] && [ "$(ft_json array)" = 80 ] && [ "$(ft_json entries)" = 0 ]'
    ft_raw info
    ft_check "after -R the minimum PIN length is back to $ft_min_before" \
        '[ "$(ft_json min_pin_length)" = "$ft_min_before" ]'
    ft_raw pin set --new-pin "$FT_PIN"
    ft_raw cred metadata --pin "$FT_PIN"
    ft_check "after -R (and a new PIN) rawctap cred metadata: 0 existing" \
        '[ "$ft_rc" = 0 ] && [ "$(ft_json existing)" = 0 ]'
    ft_raw get-assertion --rp-id "$FT_RP1" --pin "$FT_PIN"
    ft_check "after -R no credential of $FT_RP1 answers" \
        '[ "$ft_rc" = 4 ] && ft_said CTAP2_ERR_NO_CREDENTIALS'

    kill -TERM "$ft_vcard" 2>/dev/null
    ft_check "vcard stops (fido2-token)" wait_for 5 stopped "$ft_vcard"
    wait "$ft_vcard" 2>/dev/null
    echo "# fido2_token.sh: $(($(ft_now_cs) - ft_start))0 ms in the guest"
fi
