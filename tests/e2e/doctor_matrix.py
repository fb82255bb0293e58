#!/usr/bin/python3
"""The doctor matrix: `rawctap doctor` on every vcard personality, in every PIN
state (no PIN; a PIN set but not given to doctor; the PIN given), under every
fault profile that applies, each cell on a fresh card. The expected diagnosis
of each cell is worked out here from what the card is and what the fault does
(CTAP 2.0/2.1 rules, kcard's TRIAGE.md), independently of doctor's own tree.

Usage: doctor_matrix.py BIN_DIR [--jobs N] [--only PERSONALITY]
Prints the matrix as a table, one "ok"/"not ok" line per cell, and
"N passed, M failed". A cell passes when doctor's code and exit status are the
expected ones and no fix text advises a reset (rawctap reset, which erases
every credential) unless the card really is unusable otherwise (PIN blocked);
where reset is advised, the fix must say what it erases.
"""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

PIN = "1234"
FAST = ["--init-timeout-ms", "300", "--timeout-ms", "700", "--presence-timeout-ms", "3000"]

# Each personality's traits, as its getInfo and vc personality table declare
# them: CTAP2 offered, CTAP1 offered, PIN protocols offered, whether a PIN can
# be set, what it needs for a makeCredential when a PIN is set (or always).
CARDS = {
    "kcard-2.1": dict(ctap2=True, ctap1=True, pin=True, mc_uv="never"),
    "ctap2.0-pin": dict(ctap2=True, ctap1=True, pin=True, mc_uv="pin-set"),
    "ctap2.0-nopin": dict(ctap2=True, ctap1=True, pin=False, mc_uv="never"),
    "ctap2.1-pre": dict(ctap2=True, ctap1=True, pin=True, mc_uv="pin-set"),
    "ctap2.1-full": dict(ctap2=True, ctap1=True, pin=True, mc_uv="never"),
    "u2f-only": dict(ctap2=False, ctap1=True, pin=False, mc_uv="never"),
    "fido2-no-u2f-7609": dict(ctap2=True, ctap1=False, pin=True, mc_uv="never"),
    "always-uv": dict(ctap2=True, ctap1=False, pin=True, mc_uv="always"),
    "needs-uv-mc": dict(ctap2=True, ctap1=True, pin=True, mc_uv="builtin"),
    "pin-blocked": dict(ctap2=True, ctap1=True, pin=True, mc_uv="never", state="blocked"),
    "force-pin-change": dict(ctap2=True, ctap1=True, pin=True, mc_uv="never", state="change"),
    "wrong-channel": dict(ctap2=True, ctap1=True, pin=True, mc_uv="never", quirk="wrong-channel"),
}

FAULTS = [
    "none", "no-init-reply", "hang-before-up", "no-pin-protocols", "ctap1-only", "slow-ctap1",
    "no-keepalive", "drop-every", "duplicate-every", "corrupt-seq", "wrong-cid", "busy",
    "bogus-signature", "counter-rollback", "unplug", "replug",
]
FAULT_SPEC = {"slow-ctap1": "slow-ctap1:600", "drop-every": "drop-every:2",
              "duplicate-every": "duplicate-every:2"}
# channel-level faults: doctor names them at INIT or on its PINGs, whatever the card is
TRANSPORT_CODES = {"no-init-reply": "INIT_NO_REPLY", "unplug": "INIT_NO_REPLY",
                   "drop-every": "PACKET_LOSS", "duplicate-every": "DUPLICATE_PACKETS",
                   "corrupt-seq": "FRAMING", "wrong-cid": "WRONG_CHANNEL", "busy": "BUSY"}
EXIT = {"OK": 0, "NO_PIN_PROTOCOLS": 0, "PIN_REQUIRED": 0, "PIN_NOT_SET": 4,
        "CTAP1_SLOW": None, "INIT_NO_REPLY": 3, "PACKET_LOSS": 3, "DUPLICATE_PACKETS": 3,
        "FRAMING": 3, "WRONG_CHANNEL": 3, "BUSY": 4, "NO_REPLY": 3, "CTAP1_ONLY": 4,
        "HANG_BEFORE_PROMPT": 4, "KEEPALIVE_MISSING": 4, "BAD_SIGNATURE": 5,
        "COUNTER_ROLLBACK": 5, "PIN_BLOCKED": 4, "PIN_CHANGE_REQUIRED": 4}


def pin_states(card):
    t = CARDS[card]
    if not t["pin"]:
        return ["none"]
    if t.get("state"):  # the personality itself has a PIN (blocked, or to be changed)
        return ["set", "given"]
    return ["none", "set", "given"]


def applies(card, fault, pin):
    t = CARDS[card]
    if fault in ("ctap1-only", "slow-ctap1"):
        return t["ctap1"] and t["ctap2"]
    if fault == "no-pin-protocols":
        # a card without PIN protocols has no PIN, and cannot be one that needs UV
        return t["ctap2"] and pin == "none" and t["mc_uv"] in ("never", "pin-set") and \
            not t.get("quirk")
    if fault == "counter-rollback":
        # needs a credential made before the fault: impossible where every
        # makeCredential needs a PIN the card does not have
        return t["ctap2"] and not t.get("quirk") and not (t["mc_uv"] == "always" and
                                                          pin == "none")
    if fault in ("hang-before-up", "no-keepalive", "bogus-signature"):
        return t["ctap2"] and not t.get("quirk")
    return True


def baseline(card, pin):
    """The code on a card with no fault."""
    t = CARDS[card]
    if t.get("quirk") == "wrong-channel":
        return "WRONG_CHANNEL"
    if not t["ctap2"]:
        return "CTAP1_ONLY"
    if not t["pin"]:
        return "NO_PIN_PROTOCOLS"
    if t.get("state") == "blocked":
        return "PIN_BLOCKED"
    if t.get("state") == "change":
        return "PIN_CHANGE_REQUIRED"
    need = t["mc_uv"]
    if need == "always":
        return {"none": "PIN_NOT_SET", "set": "PIN_REQUIRED", "given": "OK"}[pin]
    if need == "pin-set" and pin == "set":  # built-in uv needs no PIN
        return "PIN_REQUIRED"
    return "OK"


def expected(card, pin, fault):
    """The code doctor must name for the cell. Doctor walks INIT, the channel,
    getInfo, makeCredential (with the PIN's token when given), getAssertion,
    CTAP1, and names the first failing step."""
    t = CARDS[card]
    base = baseline(card, pin)
    if fault in ("no-init-reply", "unplug"):
        return "INIT_NO_REPLY"
    if t.get("quirk") == "wrong-channel":
        return "WRONG_CHANNEL"  # every reply, PINGs included, comes on a foreign channel
    if fault in TRANSPORT_CODES:
        return TRANSPORT_CODES[fault]
    if fault == "replug":
        # an explicit udp: card that moved after its first answer goes silent
        return "NO_REPLY"
    if fault == "none":
        return base
    if fault == "ctap1-only":
        return "CTAP1_ONLY"
    if fault == "no-pin-protocols":
        return "NO_PIN_PROTOCOLS"
    if fault == "slow-ctap1":
        return "CTAP1_SLOW" if base == "OK" else base
    # makeCredential is sent unless a PIN-state finding stops the walk first:
    # a card asking for a PIN it was not given answers at once (PIN_REQUIRED),
    # and a card without the PIN it needs is named from its answer (PIN_NOT_SET)
    if fault == "hang-before-up":
        return "HANG_BEFORE_PROMPT"
    mc_answers = base in ("OK", "NO_PIN_PROTOCOLS", "PIN_BLOCKED", "PIN_CHANGE_REQUIRED")
    if fault == "no-keepalive":
        return "KEEPALIVE_MISSING" if mc_answers else base
    if fault == "bogus-signature":
        return "BAD_SIGNATURE" if mc_answers else base
    if fault == "counter-rollback":
        return "COUNTER_ROLLBACK"  # getAssertion with up=false needs no PIN
    return None


def exit_of(code, card, pin, fault):
    if code == "CTAP1_SLOW":
        return 0  # a warning: CTAP2 works
    return EXIT.get(code, 4)


RESET_RE = re.compile(r"rawctap reset|\breset (the|it|this) card|\breset it\b|reset or replace",
                      re.I)


def reset_advice(doc):
    fixes = [doc.get("fix", "")] + [w.get("fix", "") for w in doc.get("warnings", [])]
    return [f for f in fixes if RESET_RE.search(f)]


class Vcard:
    def __init__(self, bindir, tmp, args):
        self.ctl = os.path.join(tmp, "ctl.sock")
        self.err = open(os.path.join(tmp, "vcard.err"), "w+")
        self.proc = subprocess.Popen([os.path.join(bindir, "vcard"), "--listen", "127.0.0.1:0",
                                      "--control", self.ctl] + args,
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        self.uri = None
        deadline = time.time() + 5
        while time.time() < deadline and self.uri is None:
            self.err.seek(0)
            m = re.search(r"listening on (udp:[0-9.]+:[0-9]+)", self.err.read())
            if m and os.path.exists(self.ctl):
                self.uri = m.group(1)
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.02)
        if self.uri is None:
            self.err.seek(0)
            raise RuntimeError("vcard %s did not start: %s" % (args, self.err.read()[-300:]))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def run(argv, timeout=30):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       text=True)
    return p.returncode, p.stdout, p.stderr


def cell(bindir, card, pin, fault):
    """Runs one cell; returns a dict with got code/exit and the verdict."""
    tmp = tempfile.mkdtemp(prefix="kcard-matrix.")
    rawctap = os.path.join(bindir, "rawctap")
    vargs = ["--personality", card]
    if pin != "none":
        vargs += ["--pin", PIN]
    presence = "yes"
    timeouts = list(FAST)
    extra = []
    if fault == "no-keepalive":
        presence = "delay:1500"
        timeouts = ["--init-timeout-ms", "300", "--timeout-ms", "3000"]
    if fault == "slow-ctap1":
        extra += ["--slow-ms", "1000"]
    start_fault = fault not in ("none", "counter-rollback")
    if start_fault:
        vargs += ["--fault", FAULT_SPEC.get(fault, fault)]
    vargs += ["--presence", presence]
    res = dict(card=card, pin=pin, fault=fault)
    vc = None
    try:
        vc = Vcard(bindir, tmp, vargs)
        dev = ["--device", vc.uri]
        pinarg = ["--pin", PIN] if pin == "given" else []
        if fault == "counter-rollback":
            # a credential used once, then the card's counter goes backwards
            cf = os.path.join(tmp, "cred.json")
            # without a PIN where the card allows it (a blocked PIN, a PIN to be
            # changed), with built-in UV or the PIN where it does not
            for how in ([], ["--uv"], ["--pin", PIN]):
                if run([rawctap] + dev + ["make-credential", "--rp-id", "matrix.example",
                                          "--cred-file", cf] + how)[0] == 0:
                    break
            run([rawctap] + dev + ["get-assertion", "--cred-file", cf, "--no-up"])
            run([os.path.join(bindir, "vcard-ctl"), "--control", vc.ctl, "fault",
                 "counter-rollback"])
            extra += ["--cred-file", cf]
        rc, out, err = run([rawctap] + dev + timeouts + ["doctor", "--json"] + pinarg + extra)
        try:
            doc = json.loads(out)
        except ValueError:
            doc = {}
        res.update(exit=rc, code=doc.get("code", "?"), doc=doc, stderr=err[-400:])
    except Exception as e:  # a cell that cannot run is a failed cell
        res.update(exit=-1, code="RUN_ERROR", doc={}, stderr=str(e))
    finally:
        if vc is not None:
            vc.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    want = expected(card, pin, fault)
    res["want"] = want
    res["want_exit"] = exit_of(want, card, pin, fault) if want else None
    problems = []
    if want is None:
        problems.append("no expectation")
    elif res["code"] != want or res["exit"] != res["want_exit"]:
        problems.append("got %s/%s, wanted %s/%s" % (res["code"], res["exit"], want,
                                                      res["want_exit"]))
    resets = reset_advice(res["doc"])
    if resets and res["code"] != "PIN_BLOCKED":
        problems.append("reset advised on a card that does not need it: %r" % resets[0][:160])
    for f in resets:
        if "erase" not in f:
            problems.append("reset advised without saying what it erases")
    res["problems"] = problems
    return res


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 2 if not args else 0
    bindir = args[0]
    jobs = 4
    only = None
    i = 1
    while i < len(args):
        if args[i] == "--jobs":
            jobs = int(args[i + 1])
            i += 2
        elif args[i] == "--only":
            only = args[i + 1]
            i += 2
        else:
            print("doctor_matrix: unknown argument %s" % args[i], file=sys.stderr)
            return 2
    listed = run([os.path.join(bindir, "vcard"), "--list-personalities"])[1].split()
    names = [n for n in listed if n in CARDS]
    unknown = [line.split()[0] for line in run([os.path.join(bindir, "vcard"),
                                                "--list-personalities"])[1].splitlines()
               if line.split() and line.split()[0] not in CARDS]
    cells = [(c, p, f) for c in names if only in (None, c) for p in pin_states(c)
             for f in FAULTS if applies(c, f, p)]
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        results = list(ex.map(lambda a: cell(bindir, *a), cells))
    took = time.time() - t0
    passed = failed = 0
    for u in unknown:
        failed += 1
        print("not ok - personality %s has no row in the matrix (add it to CARDS)" % u)
    # the table: one row per personality and PIN state, one column per fault
    cols = [f for f in FAULTS if any(r["fault"] == f for r in results)]
    short = {f: f.replace("duplicate", "dup").replace("signature", "sig")[:13] for f in cols}
    print("%-26s" % "card / PIN" + "".join("%-20s" % short[f] for f in cols))
    for c in names:
        for p in pin_states(c):
            row = "%-26s" % ("%s / %s" % (c, p))
            for f in cols:
                r = next((r for r in results if r["card"] == c and r["pin"] == p and
                          r["fault"] == f), None)
                if r is None:
                    row += "%-20s" % "-"
                else:
                    mark = "" if not r["problems"] else "!"
                    row += "%-20s" % ("%s%s %d" % (mark, r["code"][:15], r["exit"]))
            print(row)
    for r in results:
        name = "doctor on %s, PIN %s, fault %s: %s" % (r["card"], r["pin"], r["fault"], r["code"])
        if r["problems"]:
            failed += 1
            print("not ok - %s: %s" % (name, "; ".join(r["problems"])))
            ev = r["doc"].get("evidence") or []
            for line in ev[:3]:
                print("    | evidence: %s" % line)
            if r["doc"].get("fix"):
                print("    | fix: %s" % r["doc"]["fix"][:200])
            if not r["doc"]:
                print("    | stderr: %s" % r["stderr"].replace("\n", " | "))
        else:
            passed += 1
            print("ok - %s" % name)
    print("# matrix: %d cells (%d personalities) in %.1f s with %d jobs" %
          (len(results), len(names), took, jobs))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
