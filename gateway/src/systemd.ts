/**
 * Tells systemd how the service is doing (sd_notify: READY=1, STOPPING=1, STATUS=…) when it
 * runs as a `Type=notify` unit; does nothing when NOTIFY_SOCKET is unset.
 *
 * Node.js cannot send a unix datagram, so a tiny python3 child sends it. Not `systemd-notify`:
 * it exits right after sending, and systemd (before v254) then often cannot tell which service
 * the message came from and drops it — a lost READY=1 makes systemd kill the gateway at its
 * start timeout. The child stays a second after sending, so systemd finds it in the service's
 * cgroup (the unit needs NotifyAccess=all).
 */
import { execFile } from 'node:child_process';

const SEND = `
import os, socket, sys, time
a = os.environ["NOTIFY_SOCKET"]
if a.startswith("@"): a = "\\0" + a[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(a)
s.sendall(sys.argv[1].encode())
time.sleep(1)
`;

/** Sends `state` (lines such as READY=1 or STATUS=…) to systemd; resolves once sent, or at once when not under systemd. */
export function notifySystemd(state: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!env.NOTIFY_SOCKET) return Promise.resolve();
  return new Promise((resolve, reject) =>
    execFile('python3', ['-c', SEND, state], { env, timeout: 5000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`cannot notify systemd (${state.split('\n')[0]}) through python3: ${stderr.trim() || err.message}`)) : resolve(),
    ),
  );
}
