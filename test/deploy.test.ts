/**
 * deploy/install.sh into a scratch root: the user and groups (real useradd/groupadd --root), the
 * program as it runs in production (compiled, without dev dependencies), config, data, the
 * systemd unit (enabled with the real systemctl --root, checked with systemd-analyze verify),
 * idempotence and uninstall. `npm ci` is replaced by a stand-in that links the production
 * packages already installed here (no registry); nothing outside the scratch root is touched.
 * Then the service's readiness protocol: READY=1 and STOPPING=1 on a NOTIFY_SOCKET.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort, skipWithoutSocat, tempDir, waitFor } from './helpers.js';

const repo = join(import.meta.dirname, '..');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const isRoot = process.getuid?.() === 0;
/** Installing into a scratch root needs root (file owners) and the Debian user tools. */
const skipInstall = (!isRoot || !has('useradd')) && process.env.CI !== 'true';

/** The packages `npm ci --omit=dev` would install: everything here but the development tools. */
const DEV_ONLY = new Set(['.bin', '.package-lock.json', 'tsx', 'typescript', 'vitest', '@vitest', 'eslint', 'typescript-eslint', '@typescript-eslint', 'fast-check', 'playwright-core']);

describe.skipIf(skipInstall)('deploy/install.sh into a scratch root', () => {
  let src: string;
  let root: string;
  let npmLog: string;
  let env: NodeJS.ProcessEnv;
  const at = (p: string) => join(root, p);
  const install = (...args: string[]) => spawnSync('bash', [join(src, 'deploy', 'install.sh'), '--root', root, ...args], { encoding: 'utf8', env });
  const idOf = (file: string, name: string) => Number(readFileSync(at(file), 'utf8').split('\n').find((l) => l.startsWith(`${name}:`))!.split(':')[2]);

  beforeAll(() => {
    // a built clone: sources as shipped, compiled to dist/
    src = tempDir('src');
    for (const f of ['package.json', 'package-lock.json', 'README.md', 'docs', 'bin', 'deploy', 'gateway/web']) cpSync(join(repo, f), join(src, f), { recursive: true });
    spawnSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', join(repo, 'tsconfig.build.json'), '--outDir', join(src, 'dist')], { encoding: 'utf8' });
    expect(existsSync(join(src, 'dist/gateway/src/cli/main.js'))).toBe(true);

    const bin = tempDir('fakebin');
    npmLog = join(bin, 'npm.log');
    const links = readdirSync(join(repo, 'node_modules'))
      .filter((m) => !DEV_ONLY.has(m))
      .map((m) => `ln -s '${join(repo, 'node_modules', m)}' node_modules/'${m}'`)
      .join('\n');
    writeFileSync(join(bin, 'npm'), `#!/bin/sh\necho "$PWD: $*" >> '${npmLog}'\nmkdir node_modules\n${links}\n`);
    chmodSync(join(bin, 'npm'), 0o755);
    env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };

    root = tempDir('root');
    mkdirSync(at('etc'));
    writeFileSync(at('etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
    writeFileSync(at('etc/group'), 'root:x:0:\ndialout:x:20:\n');
    writeFileSync(at('etc/shadow'), '');
    writeFileSync(at('etc/gshadow'), '');
  }, 120_000);

  it('installs the user, the program, config, data and an enabled, valid unit, touching nothing outside the root', () => {
    const hostPasswd = readFileSync('/etc/passwd', 'utf8');
    const r = install();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/made the group gpio/);
    expect(r.stdout).not.toMatch(/made the group dialout/);
    expect(readFileSync('/etc/passwd', 'utf8')).toBe(hostPasswd);
    expect(existsSync('/etc/systemd/system/ovn-gateway.service') && readFileSync('/etc/systemd/system/ovn-gateway.service', 'utf8').includes(root)).toBe(false);

    const uid = idOf('etc/passwd', 'ovn-gateway');
    const gid = idOf('etc/group', 'ovn-gateway');
    expect(readFileSync(at('etc/passwd'), 'utf8')).toMatch(/^ovn-gateway:x:\d+:\d+::\/var\/lib\/ovn-gateway:\/usr\/sbin\/nologin$/m);
    expect(readFileSync(at('etc/group'), 'utf8')).toMatch(/^dialout:x:20:ovn-gateway$/m);
    expect(readFileSync(at('etc/group'), 'utf8')).toMatch(/^gpio:x:\d+:ovn-gateway$/m);

    expect(readFileSync(npmLog, 'utf8').trim()).toBe(`${at('opt/ovn-gateway.new')}: ci --omit=dev --no-audit --no-fund`);
    const main = statSync(at('opt/ovn-gateway/dist/gateway/src/cli/main.js'));
    expect([main.uid, main.mode & 0o777]).toEqual([0, 0o644]);
    expect(existsSync(at('opt/ovn-gateway/gateway/web/index.html'))).toBe(true);
    expect(readlinkSync(at('usr/local/bin/ovn-gateway'))).toBe('/opt/ovn-gateway/bin/ovn-gateway.js');

    const conf = statSync(at('etc/ovn-gateway/gateway.yaml'));
    expect([conf.uid, conf.gid, conf.mode & 0o777]).toEqual([0, gid, 0o640]);
    expect(statSync(at('etc/ovn-gateway')).mode & 0o777).toBe(0o750);
    expect(existsSync(at('etc/ovn-gateway/99-ovn-gateway.rules.example'))).toBe(true);
    const data = statSync(at('var/lib/ovn-gateway'));
    expect([data.uid, data.gid, data.mode & 0o777]).toEqual([uid, gid, 0o750]);

    const unit = at('etc/systemd/system/ovn-gateway.service');
    expect(statSync(unit).mode & 0o777).toBe(0o644);
    const text = readFileSync(unit, 'utf8');
    const node = execFileSync('readlink', ['-f', process.execPath], { encoding: 'utf8' }).trim();
    expect(text).toContain(`ExecStart=${node} /opt/ovn-gateway/bin/ovn-gateway.js run --config /etc/ovn-gateway/gateway.yaml`);
    for (const line of ['Type=notify', 'Restart=on-failure', 'After=network.target time-sync.target', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/ovn-gateway', 'NoNewPrivileges=yes', 'PrivateTmp=yes', 'DevicePolicy=closed', 'SupplementaryGroups=dialout gpio']) {
      expect(text).toContain(`${line}\n`);
    }
    expect(text).not.toMatch(/^(Wants|Requires)=.*network-online/m);
    expect(lstatSync(at('etc/systemd/system/multi-user.target.wants/ovn-gateway.service')).isSymbolicLink()).toBe(true);
  });

  it.skipIf(!has('systemd-analyze'))('the installed unit passes systemd-analyze verify', () => {
    const r = spawnSync('systemd-analyze', ['verify', at('etc/systemd/system/ovn-gateway.service')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('the installed program runs from its compiled code and production packages, and the example config is valid', () => {
    const r = spawnSync(process.execPath, [at('opt/ovn-gateway/bin/ovn-gateway.js'), 'config', 'check', at('etc/ovn-gateway/gateway.yaml')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/gateway\.yaml: ok \(3 devices, 0 simulators\)/);
  });

  it('runs again safely: keeps the edited config and the dependencies, adds no second user', () => {
    writeFileSync(at('etc/ovn-gateway/gateway.yaml'), '# edited\n', { flag: 'a' });
    writeFileSync(at('var/lib/ovn-gateway/journal.sqlite'), 'the journal');
    const r = install();
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/kept the config/);
    expect(r.stdout).toMatch(/kept the installed dependencies/);
    expect(readFileSync(at('etc/ovn-gateway/gateway.yaml'), 'utf8')).toMatch(/# edited\n$/);
    expect(readFileSync(npmLog, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(readFileSync(at('etc/passwd'), 'utf8').match(/^ovn-gateway:/gm)).toHaveLength(1);
    expect(readFileSync(at('etc/group'), 'utf8').match(/^gpio:/gm)).toHaveLength(1);
    expect(existsSync(at('opt/ovn-gateway/node_modules/better-sqlite3'))).toBe(true);
    expect(existsSync(at('opt/ovn-gateway.new')) || existsSync(at('opt/ovn-gateway.old'))).toBe(false);
  });

  it('uninstalls keeping config and data, and --purge removes them and the user', () => {
    const r = install('--uninstall');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/kept \/etc\/ovn-gateway and \/var\/lib\/ovn-gateway/);
    for (const gone of ['etc/systemd/system/ovn-gateway.service', 'etc/systemd/system/multi-user.target.wants/ovn-gateway.service', 'opt/ovn-gateway', 'usr/local/bin/ovn-gateway']) {
      expect(existsSync(at(gone)), gone).toBe(false);
    }
    expect(readFileSync(at('var/lib/ovn-gateway/journal.sqlite'), 'utf8')).toBe('the journal');
    expect(existsSync(at('etc/ovn-gateway/gateway.yaml'))).toBe(true);

    const p = install('--uninstall', '--purge');
    expect(p.status).toBe(0);
    expect(existsSync(at('var/lib/ovn-gateway'))).toBe(false);
    expect(existsSync(at('etc/ovn-gateway'))).toBe(false);
    expect(readFileSync(at('etc/passwd'), 'utf8')).not.toMatch(/^ovn-gateway:/m);
  });

  it('says what is wrong with its options', () => {
    expect(install('--purge').stderr).toMatch(/--purge goes with --uninstall/);
    expect(install('--prefix', 'relative/dir').stderr).toMatch(/--prefix must be an absolute path, got relative\/dir/);
    expect(install('--frobnicate').stderr).toMatch(/unknown option --frobnicate/);
    // a mistyped prefix is never removed
    mkdirSync(at('usr/share/keep'), { recursive: true });
    const wrong = install('--uninstall', '--prefix', '/usr/share');
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toMatch(/does not look like an installed gateway/);
    expect(existsSync(at('usr/share/keep'))).toBe(true);
  });
});

describe.skipIf(skipWithoutSocat || !has('python3'))('readiness under systemd (Type=notify)', () => {
  it('sends READY=1 once the gateway runs and STOPPING=1 when it is told to stop', async () => {
    const dir = tempDir('notify');
    const socket = join(dir, 'notify.sock');
    // a datagram socket like systemd's, printing each message on a line
    const listener = spawn('socat', ['-u', `UNIX-RECV:${socket}`, 'STDOUT'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let received = '';
    listener.stdout.on('data', (d: Buffer) => (received += d.toString()));
    await waitFor(() => existsSync(socket));
    const cfg = join(dir, 'gateway.json');
    writeFileSync(cfg, JSON.stringify({ gateway: { dataDir: join(dir, 'data'), http: { port: await freePort() }, log: { format: 'json' } } }));
    const gw = spawn(process.execPath, [join(repo, 'bin/ovn-gateway.js'), 'run', '--config', cfg], { stdio: 'ignore', env: { ...process.env, NOTIFY_SOCKET: socket } });
    try {
      await waitFor(() => received.includes('READY=1'), 20_000);
      expect(received).toMatch(/READY=1\nSTATUS=journal open, 0 device\(s\) connecting, API on http:\/\/127\.0\.0\.1:\d+/);
      expect(received).not.toContain('STOPPING=1');
      gw.kill('SIGTERM');
      await waitFor(() => received.includes('STOPPING=1'), 10_000);
      const [code] = gw.exitCode === null ? await once(gw, 'exit') : [gw.exitCode];
      expect(code).toBe(0);
    } finally {
      gw.kill();
      listener.kill();
    }
  });
});
