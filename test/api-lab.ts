/** A small lab for the API tests: one metering node (simulated, over TCP) switching a billed, co-financed printer, and a token per role. */
import { MeteringNodeSim } from '../simulators/src/metering-node/node-sim.js';
import { serveTcp, type SimTransport } from '../simulators/src/transports.js';
import { createToken, type Role } from '../gateway/src/http/tokens.js';
import { SIM_CLOCK_RATE, startTestGateway, waitFor, type TestGateway } from './helpers.js';

export const ADA = '04A1B2C3';
export const BO = '0455667788';

export interface ApiLab {
  gw: TestGateway;
  sim: MeteringNodeSim;
  tokens: Record<Role | 'bo', string>;
  /** app.inject with a role's token (or none, or any header value). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body, which the assertions check
  call(method: string, url: string, as: Role | 'bo' | null, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Record<string, unknown>; text: string }>;
  stop(): Promise<void>;
}

export async function startApiLab(extra: Record<string, unknown> = {}): Promise<ApiLab> {
  const sim = new MeteringNodeSim({ nodeId: 'n1', heartbeatS: 1, meterIntervalMs: 100, powerW: 200, timeScale: 60 });
  const transport: SimTransport = await serveTcp(sim, '127.0.0.1', 0);
  const gw = await startTestGateway({
    devices: [{ id: 'n1', kind: 'metering-node', maxClockRate: SIM_CLOCK_RATE, serial: { path: transport.address } }],
    tools: [{ id: 'printer', name: 'Shared printer', node: 'n1', idleTimeoutMin: 60, warnBeforeOffS: 0, serviceEveryH: 100 }],
    billing: {
      currency: 'EUR',
      technicianRate: '30.00',
      tools: {
        printer: {
          tariffs: { commercial: { hourlyRate: '6.00', incrementMin: 15, minimumCharge: '2.00' }, project: { hourlyRate: '6.00', cash: false } },
          coOwnership: { coOwners: [{ affiliate: 'ada', contribution: '300.00' }, { affiliate: 'bo', contribution: '100.00' }] },
        },
      },
    },
    // an affiliate may switch to community use themselves; project use (no cash) is a custodian's decision
    useTypes: ['commercial', { id: 'community', selfService: true }, 'project'],
    affiliates: [
      { id: 'ada', name: 'Ada', badges: [ADA], qualifications: [{ tool: 'printer' }] },
      { id: 'bo', name: 'Bo', badges: [BO], qualifications: [{ tool: 'printer' }] },
    ],
    ...extra,
  });
  await waitFor(() => gw.devices.get('n1')!.health().state === 'online');
  const tokens = {
    affiliate: createToken(gw.journal, { role: 'affiliate', affiliateId: 'ada', name: 'ada-phone' }).token,
    bo: createToken(gw.journal, { role: 'affiliate', affiliateId: 'bo' }).token,
    custodian: createToken(gw.journal, { role: 'custodian', name: 'carla' }).token,
    maintainer: createToken(gw.journal, { role: 'maintainer', name: 'mo' }).token,
    admin: createToken(gw.journal, { role: 'admin', name: 'root' }).token,
  };
  return {
    gw,
    sim,
    tokens,
    async call(method, url, as, body, headers = {}) {
      const res = await gw.app.inject({
        method: method as 'GET',
        url,
        headers: { ...(as ? { authorization: `Bearer ${tokens[as]}` } : {}), ...headers },
        ...(body !== undefined ? { payload: body as object } : {}),
      });
      const json = res.headers['content-type']?.toString().includes('json');
      return { status: res.statusCode, body: json ? res.json() : res.body, headers: res.headers, text: res.body };
    },
    async stop() {
      await gw.stop();
      await transport.close();
    },
  };
}
