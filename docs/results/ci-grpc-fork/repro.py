"""grpc/grpc#43055 on this machine: a live gRPC client in a thread while Popen(preexec_fn=...) forks
in a loop; counts the children that die before exec (SIGABRT: the poller's epoll fd, closed by Popen).

    python repro.py client 300        # gRPC's defaults
    python repro.py client 800 off    # GRPC_ENABLE_FORK_SUPPORT=false, set in-process before grpc loads
"""
import os, subprocess, sys, threading, time
if len(sys.argv) > 3: os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
from concurrent import futures
import grpc

if sys.argv[1] == "server":
    def echo(req, ctx):
        return req
    h = grpc.method_handlers_generic_handler("e.E", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    s = grpc.server(futures.ThreadPoolExecutor(4)); s.add_generic_rpc_handlers((h,))
    s.add_insecure_port("127.0.0.1:50777"); s.start(); s.wait_for_termination(); sys.exit()

srv = subprocess.Popen([sys.executable, __file__, "server"])
time.sleep(2)
ch = grpc.insecure_channel("127.0.0.1:50777")
call = ch.unary_unary("/e.E/Echo")
stop = False
def spin():
    while not stop:
        call(b"x", timeout=5)
t = threading.Thread(target=spin, daemon=True); t.start()
bad = 0
n = int(sys.argv[2])
for i in range(n):
    p = subprocess.Popen(["true"], preexec_fn=lambda: None, stderr=subprocess.DEVNULL)
    if p.wait() != 0:
        bad += 1
stop = True
srv.kill()
print(f"GRPC_ENABLE_FORK_SUPPORT={os.environ.get('GRPC_ENABLE_FORK_SUPPORT')}: {bad} of {n} children died")
