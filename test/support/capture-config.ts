/** The device most bridge tests need: `sensor`, no AUTH, from 127.0.0.1, delivering to the capture directory. */
export const SENSOR_DEVICE = '  sensor: { auth: none, networks: [127.0.0.1], senders: [sensor@example.net], upstream: capture }\n';

/**
 * The `yaml` of startTestBridge() for a bridge that delivers into its
 * `captured/` directory: `topLevel` keys (e.g. a `limits:` line), the
 * `capture` upstream, and `devices`, indented under `devices:`.
 */
export function captureYaml(devices: string, topLevel = ''): string {
  return `${topLevel}upstreams:
  capture: { type: directory, path: captured }
devices:
${devices}`;
}
