# 4 clients loop on GET /audit; one GET /metrics every 5 ms and one POST /transfers every 5 ms,
# latency from send to full response; prints p50/p99/max after `seconds`.
import http.client, json, sys, threading, time
host, port, seconds = "127.0.0.1", int(sys.argv[1]), float(sys.argv[2])
stop = time.time() + seconds
audits = []; metrics = []; transfers = []
def req(conn, method, path, body=None):
    h = {"content-type": "application/json"} if body else {}
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse(); data = r.read(); return r.status, data
def auditor():
    conn = http.client.HTTPConnection(host, port, timeout=120)
    while time.time() < stop:
        t = time.time(); s, d = req(conn, "GET", "/audit"); audits.append((time.time() - t, s))
def sampler(out, method, path, body):
    conn = http.client.HTTPConnection(host, port, timeout=120)
    while time.time() < stop:
        t = time.time(); s, d = req(conn, method, path, body); out.append((time.time() - t, s))
        time.sleep(0.005)
ts = [threading.Thread(target=auditor) for _ in range(4)]
ts.append(threading.Thread(target=sampler, args=(metrics, "GET", "/metrics", None)))
ts.append(threading.Thread(target=sampler, args=(transfers, "POST", "/transfers", json.dumps({"from": 1, "to": 2, "amount": 1}))))
[t.start() for t in ts]; [t.join() for t in ts]
def pct(xs, p):
    xs = sorted(x for x, _ in xs); return xs[min(len(xs) - 1, int(round((len(xs) - 1) * p)))] * 1e3 if xs else float('nan')
for name, xs in [("audit", audits), ("metrics", metrics), ("transfer", transfers)]:
    statuses = sorted(set(s for _, s in xs))
    print(f"{name}: n={len(xs)} p50={pct(xs,0.5):.1f} ms p99={pct(xs,0.99):.1f} ms max={pct(xs,1.0):.1f} ms statuses={statuses}")
