/**
 * The command-line reference in Markdown, generated from the commander definitions that
 * buildProgram() assembles (the same ones `--help` prints), so that it cannot drift from them.
 */
import type { Argument, Command, Help } from 'commander';
import { TOKEN_HELP } from './common.js';
import { buildProgram } from './main.js';

/** Markdown for every command: its path, usage, description, arguments and options with their defaults; the same text at every call. */
export function renderCliReference(): string {
  const program = buildProgram();
  const help = program.createHelp();
  const commands = descendants(program);
  const out = [
    '# Command line',
    '',
    `\`${program.name()}\`: ${md(program.description())}. Every command also takes \`-h, --help\`; \`${program.name()} --version\` prints the version.`,
    '',
    `The commands that call the running gateway's API (${apiCommands(program).map((c) => `\`${path(c).replace(`${program.name()} `, '')}\``).join(', ')}) take \`--url\` and \`--token <token>\`: an API token with the role the command needs, \`$OVN_GATEWAY_TOKEN\` when the option is not given (\`${program.name()} tokens create\` makes one).`,
    '',
    '| Command | What it does |',
    '| --- | --- |',
    ...program.commands.map((c) => `| [\`${path(c)}\`](#${anchor(path(c))}) | ${md(c.description())} |`),
    '',
  ];
  for (const c of commands) out.push(...section(c, help));
  return out.join('\n');
}

/** The commands that call the API (their --token is withApi's). */
function apiCommands(program: Command): Command[] {
  return descendants(program).filter((c) => c.options.some((o) => o.long === '--token' && o.description === TOKEN_HELP));
}

/** Every command below `cmd`, depth first, in the order they were defined. */
function descendants(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...descendants(c)]);
}

function path(cmd: Command): string {
  return cmd.parent ? `${path(cmd.parent)} ${cmd.name()}` : cmd.name();
}

/** The anchor GitHub gives a heading: lower case, punctuation other than dashes dropped, spaces as dashes. */
function anchor(heading: string): string {
  return heading.toLowerCase().replace(/[^a-z0-9 -]/g, '').replaceAll(' ', '-');
}

/** Text as Markdown shows it literally (`<file>` would otherwise be taken for an HTML tag). */
function md(text: string): string {
  return text.replace(/[\\`*_<>|[\]]/g, '\\$&');
}

function section(cmd: Command, help: Help): string[] {
  const depth = path(cmd).split(' ').length; // "ovn-gateway run" is a level-2 heading
  const out = [`${'#'.repeat(depth)} \`${path(cmd)}\``, '', md(cmd.description()), '', '```', help.commandUsage(cmd), '```', ''];
  if (cmd.commands.length > 0) {
    out.push('Commands:', '', ...cmd.commands.map((c) => `- [\`${c.name()}\`](#${anchor(path(c))}): ${md(c.description())}`), '');
  }
  if (cmd.registeredArguments.length > 0) {
    out.push('Arguments:', '', ...cmd.registeredArguments.map((a) => `- \`${a.required ? `<${term(a)}>` : `[${term(a)}]`}\`${described(help.argumentDescription(a))}`), '');
  }
  const options = cmd.options.filter((o) => !o.hidden);
  if (options.length > 0) out.push('Options:', '', ...options.map((o) => `- \`${o.flags}\`${o.mandatory ? ' (required)' : ''}${described(help.optionDescription(o))}`), '');
  return out;
}

/** An argument as the usage line writes it, without its brackets. */
const term = (a: Argument) => `${a.name()}${a.variadic ? '...' : ''}`;

function described(text: string): string {
  return text ? `: ${md(text)}` : '';
}
