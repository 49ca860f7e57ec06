/** `ovn-gateway print`: a G-code file on a printer through the running gateway (print-host mode), or its job paused, resumed or cancelled. */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { callApi, CliError, withApi, type ApiOptions } from '../common.js';
import { out } from '../print.js';

export function registerPrintCommand(program: Command): void {
  withApi(program.command('print'))
    .description('print a G-code file on a printer through the running gateway (print-host mode), or pause, resume or cancel its job')
    .argument('<device>', 'printer id, as in the config')
    .argument('[file]', 'G-code file to print')
    .option('--pause', 'pause the current job')
    .option('--resume', 'resume the paused job')
    .option('--cancel', 'cancel the current job (the cancel script runs)')
    .option('--follow', 'show progress and filament until the job ends')
    .action(async (id: string, file: string | undefined, opts: ApiOptions & { pause?: boolean; resume?: boolean; cancel?: boolean; follow?: boolean }) => {
      const action = opts.pause ? 'pause' : opts.resume ? 'resume' : opts.cancel ? 'cancel' : null;
      if (!action && !file) throw new CliError('give a G-code file to print, or one of --pause, --resume, --cancel');
      const api = (path: string, init?: RequestInit) => callApi(opts, path, init);
      const dev = encodeURIComponent(id);
      let job: Record<string, unknown>;
      if (action) job = await api(`/api/devices/${dev}/jobs/current/${action}`, { method: 'POST' });
      else {
        const gcode = await readFile(file!, 'utf8').catch((err: NodeJS.ErrnoException) => {
          throw new CliError(`${file}: cannot read it (${err.code ?? err.message})`);
        });
        job = await api(`/api/devices/${dev}/jobs?name=${encodeURIComponent(basename(file!))}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: gcode });
      }
      const show = (j: Record<string, unknown>) => `${String(j.file)}: ${String(j.state)}, ${Math.round(Number(j.progress) * 100)} %, ${Number(j.filamentG).toFixed(2)} g (${Number(j.filamentMm).toFixed(0)} mm)`;
      out(show(job));
      while (opts.follow) {
        await new Promise((r) => setTimeout(r, 2000));
        const d = (await api(`/api/devices/${dev}`)).detail as { job: Record<string, unknown> | null; lastJob: Record<string, unknown> | null };
        const current = d.job ?? d.lastJob;
        if (!current || current.id !== job.id) break;
        out(show(current));
        if (!d.job) break;
      }
    });
}
