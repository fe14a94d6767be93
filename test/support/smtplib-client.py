"""Python's smtplib as a scripted device, for test/support/python-client.ts.

Reads one JSON object on stdin (host, port, security, tlsVersion, mechanism,
username, password, from, to, message as base64, caFile, sourceAddress,
forceAuth, timeout, ehloName, legacyCiphers) and prints one JSON line: ok,
the last reply code, the negotiated TLS version, every step's reply, and the
error that ended the session early, if any.
"""
import base64, hashlib, json, re, secrets, smtplib, ssl, sys, warnings

# TLSVersion.TLSv1/TLSv1_1 are deprecated; pinning them is the point here.
warnings.simplefilter("ignore", DeprecationWarning)
o = json.load(sys.stdin)
res = {"ok": False, "code": None, "tlsVersion": None, "steps": [], "error": None}

def text(t):
    return t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t)

def step(name, code, msg):
    res["steps"].append({"step": name, "code": code, "text": text(msg)})
    res["code"] = code
    return code

def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if o.get("caFile"):
        ctx.load_verify_locations(o["caFile"])
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    v = o.get("tlsVersion")
    if v:
        if v in ("TLSv1", "TLSv1.1"):
            ctx.set_ciphers(o["legacyCiphers"])
        ver = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
               "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}[v]
        ctx.minimum_version = ver
        ctx.maximum_version = ver
    return ctx

def digest_md5(challenge):
    # smtplib has no DIGEST-MD5: RFC 2831's client side for qop=auth, checking the server's rspauth.
    text = challenge.decode("utf-8")
    if text.startswith("rspauth="):
        if text[8:] != digest_md5.rspauth:
            raise RuntimeError("server rspauth does not match")
        return ""
    d = {k.lower(): q or t for k, q, t in re.findall(r'([\w-]+)=(?:"([^"]*)"|([^,]*))', text)}
    user, realm, nonce, cnonce, uri = o["username"], d.get("realm", ""), d["nonce"], secrets.token_hex(12), "smtp/" + o["host"]
    ha1 = hashlib.md5(hashlib.md5(("%s:%s:%s" % (user, realm, o["password"])).encode()).digest() + (":%s:%s" % (nonce, cnonce)).encode()).hexdigest()
    kd = lambda a2: hashlib.md5(("%s:%s:00000001:%s:auth:%s" % (ha1, nonce, cnonce, hashlib.md5(a2.encode()).hexdigest())).encode()).hexdigest()
    digest_md5.rspauth = kd(":" + uri)
    return 'username="%s",realm="%s",nonce="%s",cnonce="%s",nc=00000001,qop=auth,digest-uri="%s",response=%s,charset=utf-8' % (user, realm, nonce, cnonce, uri, kd("AUTHENTICATE:" + uri))

server = None
try:
    t = o["timeout"]
    source = (o["sourceAddress"], 0) if o.get("sourceAddress") else None
    if o["security"] == "implicit":
        server = smtplib.SMTP_SSL(local_hostname=o["ehloName"], timeout=t, source_address=source, context=context())
    else:
        server = smtplib.SMTP(local_hostname=o["ehloName"], timeout=t, source_address=source)
    # connect() alone leaves _host empty, and TLS takes SNI and the name to verify from it.
    server._host = o["host"]
    if step("connect", *server.connect(o["host"], o["port"])) != 220:
        raise RuntimeError("no 220 greeting")
    step("ehlo", *server.ehlo())
    if o["security"] == "starttls":
        if not server.has_extn("starttls"):
            raise RuntimeError("server does not offer STARTTLS")
        # smtplib goes on in cleartext after a refused STARTTLS; a device pinned to TLS must not.
        if step("starttls", *server.starttls(context=context())) != 220:
            raise RuntimeError("STARTTLS refused")
        step("ehlo", *server.ehlo())
    if isinstance(server.sock, ssl.SSLSocket):
        res["tlsVersion"] = server.sock.version()
    mech = o.get("mechanism")
    if mech:
        offered = server.esmtp_features.get("auth", "").upper().split()
        if mech not in offered and not o.get("forceAuth"):
            raise RuntimeError("server does not advertise AUTH %s" % mech)
        server.user, server.password = o["username"], o["password"]
        auth = {"PLAIN": server.auth_plain, "LOGIN": server.auth_login, "CRAM-MD5": server.auth_cram_md5, "DIGEST-MD5": digest_md5}[mech]
        # Devices send LOGIN without an initial response and answer both prompts.
        step("auth", *server.auth(mech, auth, initial_response_ok=(mech == "PLAIN")))
    if step("mail", *server.mail(o["from"])) != 250:
        raise RuntimeError("MAIL FROM refused")
    accepted = [r for r in o["to"] if step("rcpt", *server.rcpt(r)) in (250, 251)]
    if not accepted:
        raise RuntimeError("every recipient refused")
    res["ok"] = step("data", *server.data(base64.b64decode(o["message"]))) == 250
    server.quit()
except smtplib.SMTPResponseException as e:
    step("error", e.smtp_code, e.smtp_error)
    res["error"] = "%s: %s %s" % (type(e).__name__, e.smtp_code, text(e.smtp_error))
except Exception as e:
    res["error"] = "%s: %s" % (type(e).__name__, e)
finally:
    if server is not None and server.sock is not None:
        server.close()
print(json.dumps(res))
