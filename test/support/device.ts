import { configSchema } from '../../src/config/schema.js';
import { DevicePolicy } from '../../src/policy/devices.js';

/**
 * A device as the bridge builds it from a config entry, with the schema's
 * defaults and checks applied: `entry` is what would stand under
 * `devices.NAME` in the YAML (senders and upstream are filled in).
 */
export function deviceFrom(entry: Record<string, unknown>, name = 'device'): DevicePolicy {
  const config = configSchema.parse({
    listen: [{ port: 2525, tls: 'starttls' }],
    upstreams: { capture: { type: 'directory', path: 'captured' } },
    devices: { [name]: { senders: ['device@example.net'], upstream: 'capture', ...entry } },
  });
  return new DevicePolicy(name, config.devices[name]);
}
