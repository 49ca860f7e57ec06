/** The command-line reference is generated from the commander definitions: every command, its options and their defaults, the same text each time. */
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../gateway/src/cli/main.js';
import { renderCliReference } from '../gateway/src/cli/reference.js';

describe('renderCliReference', () => {
  it('describes every command with its usage, arguments and options, and renders the same text each time', () => {
    const text = renderCliReference();
    expect(renderCliReference()).toBe(text);
    const paths = (cmd: ReturnType<typeof buildProgram>, prefix: string): string[] => cmd.commands.flatMap((c) => [`${prefix} ${c.name()}`, ...paths(c, `${prefix} ${c.name()}`)]);
    const all = paths(buildProgram(), 'ovn-gateway');
    expect(all).toContain('ovn-gateway sim lab');
    for (const p of all) expect(text).toMatch(new RegExp(`^#{2,3} \`${p}\`$`, 'm'));
    expect(text).toContain('ovn-gateway print [options] <device> [file]');
    expect(text).toContain('- `<device>`: printer id, as in the config');
    expect(text).toContain('- `-c, --config <file>` (required): configuration file (YAML or JSON)');
    expect(text).toContain('- `--time-scale <x>`: simulated seconds per real second (default: 1)');
    expect(text).toContain('- `--pty <path>`: create a pseudo-terminal linked at \\<path\\> (needs socat)');
    expect(text).toContain('| [`ovn-gateway sim`](#ovn-gateway-sim) |');
    // how to pass a token, in the reference and in each API command's section
    expect(text).toContain('The commands that call the running gateway\'s API (`print`, `sessions list`, `sessions stop`, `sessions use-type`) take `--url` and `--token <token>`');
    for (const p of ['print', 'sessions list', 'sessions stop', 'sessions use-type']) {
      const section = text.split(new RegExp(`^#{2,3} \`ovn-gateway ${p}\`$`, 'm'))[1]!.split('\n#')[0]!;
      expect(section, p).toContain('- `--token <token>`: an API token with the role the command needs (ovn-gateway tokens create makes one); default: $OVN\\_GATEWAY\\_TOKEN');
    }
  });
});
