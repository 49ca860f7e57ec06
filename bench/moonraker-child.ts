/**
 * The other process of `bench/moonraker.ts`: simulated Moonraker hosts, so that the gateway
 * measured runs alone in its process. Driven over the IPC channel of `fork`: each request
 * `{ id, cmd, … }` is answered `{ id, … }`.
 *
 * - `start`: n hosts on free ports; answers their URLs;
 * - `shutdown`: host i's Klipper shuts down with a numbered message; answers the wall-clock time
 *   (performance.timeOrigin + now, ms) just before the host sends it;
 * - `restart`: host i's Klipper restarts (ready again about 200 ms later).
 */
import { MoonrakerSim } from '../simulators/src/moonraker/moonraker-sim.js';

type Request = { id: number; cmd: 'start'; n: number } | { id: number; cmd: 'shutdown'; i: number; text: string } | { id: number; cmd: 'restart'; i: number } | { id: number; cmd: 'exit' };

const sims: MoonrakerSim[] = [];
const send = (msg: object) => process.send!(msg);
const wallMs = () => performance.timeOrigin + performance.now();

process.on('message', (r: Request) => {
  void (async () => {
    try {
      switch (r.cmd) {
        case 'start':
          for (let i = 0; i < r.n; i++) sims.push(await MoonrakerSim.start({ apiKey: null }));
          return send({ id: r.id, urls: sims.map((s) => s.url) });
        case 'shutdown': {
          const at = wallMs();
          sims[r.i]!.klipper.shutdown(r.text);
          return send({ id: r.id, at });
        }
        case 'restart':
          sims[r.i]!.klipper.restartKlipper();
          return send({ id: r.id });
        case 'exit':
          for (const s of sims) await s.close();
          send({ id: r.id });
          return process.exit(0);
      }
    } catch (err) {
      send({ id: r.id, error: (err as Error).message });
    }
  })();
});

send({ ready: true });
