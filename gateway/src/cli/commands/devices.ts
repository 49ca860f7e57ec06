/** `ovn-gateway devices`: networked devices' own credentials at the embedded MQTT broker, in the journal database. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { MqttCredentials } from '../../mqtt/credentials.js';
import { CliError, withData, withJournal, type DataOptions } from '../common.js';
import { list, out } from '../print.js';

export function registerDeviceCommands(program: Command): void {
  const devicesCmd = program.command('devices').description("devices' own credentials at the embedded MQTT broker (works with the gateway running or not)");
  withData(devicesCmd.command('add-mqtt').argument('<id>', 'the device id: its MQTT user name and client id'))
    .description('make MQTT credentials for a device and print its secret, once')
    .option('--rotate', 'replace existing credentials (the old secret stops working; a connected device is disconnected)')
    .action(async (id: string, opts: DataOptions & { rotate?: boolean }) => {
      const mqtt = opts.config ? loadConfig(opts.config).config.mqtt : undefined;
      const made = await withJournal(opts, (journal) => new MqttCredentials(journal).add(id, { rotate: opts.rotate }));
      out(`${id}: MQTT credentials ${made.rotated ? 'replaced (the old secret no longer works)' : 'made'}`);
      out(`  user name and client id: ${id}`);
      out(`  password:                ${made.secret}`);
      out("  shown only now: put it in the device's configuration (the gateway keeps only a hash)");
      if (mqtt) {
        const tls = mqtt.tls ? `, TLS on port ${mqtt.tls.port}` : '';
        out(`  broker: ${mqtt.listen}${tls}; topics under ${mqtt.baseTopic}/devices/${id}/ (telemetry, status, badge, reply; commands on command)`);
      }
    });
  withData(devicesCmd.command('remove-mqtt').argument('<id>'))
    .description("remove a device's MQTT credentials (a connected device is disconnected within seconds)")
    .action((id: string, opts: DataOptions) =>
      withJournal(opts, (journal) => {
        if (!new MqttCredentials(journal).remove(id)) throw new CliError(`${id} has no MQTT credentials`);
        out(`${id}: MQTT credentials removed`);
      }),
    );
  withData(devicesCmd.command('list-mqtt'))
    .description('list the devices that have MQTT credentials')
    .action((opts: DataOptions) =>
      withJournal(opts, (journal) => {
        const rows = new MqttCredentials(journal).list().map((c) => [c.deviceId, c.createdAt]);
        list(['device', 'created'], rows, 'no device has MQTT credentials (devices add-mqtt <id> makes them)');
      }),
    );
}
