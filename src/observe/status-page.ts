import escapeHtml from 'escape-html';
import type { Activity, DeliveryOutcome } from './activity.js';
import type { BridgeView } from './bridge-view.js';
import { hintFor } from './upstream-hints.js';

/** How often the page reloads itself, in seconds. */
const REFRESH_S = 30;

/** Tagged template that escapes every interpolated value unless it is already markup. */
class Markup {
  constructor(readonly html: string) {}
}

function html(strings: TemplateStringsArray, ...values: unknown[]): Markup {
  let out = strings[0];
  values.forEach((value, index) => {
    const parts = Array.isArray(value) ? value : [value];
    for (const part of parts) out += part instanceof Markup ? part.html : escapeHtml(String(part ?? ''));
    out += strings[index + 1];
  });
  return new Markup(out);
}

/** "3 min ago", "in 2 h": what a person reads at a glance; the exact time goes in the title. */
function ago(at: number | undefined, now: number): Markup {
  if (at === undefined) return html`<span class="muted">never</span>`;
  const past = at <= now;
  const seconds = Math.round((now - at) / 1000);
  const span = Math.abs(seconds);
  const text =
    span < 90
      ? `${span} s`
      : span < 5400
        ? `${Math.round(span / 60)} min`
        : span < 172800
          ? `${Math.round(span / 3600)} h`
          : `${Math.round(span / 86400)} d`;
  return html`<time datetime="${new Date(at).toISOString()}" title="${new Date(at).toISOString()}"
    >${past ? `${text} ago` : `in ${text}`}</time
  >`;
}

const OUTCOME_BADGE: Record<DeliveryOutcome, string> = { delivered: 'ok', deferred: 'warn', failed: 'bad' };

const STYLE = `
body{font:15px/1.4 system-ui,sans-serif;margin:0;padding:12px;background:#f4f5f7;color:#1d2430}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 8px}
.muted{color:#6b7280}.card{background:#fff;border-radius:8px;padding:10px 12px;margin:0 0 8px;box-shadow:0 1px 2px #0002}
.card h3{font-size:15px;margin:0 0 6px;display:flex;justify-content:space-between;gap:8px;flex-wrap:wrap}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:0}dt{color:#6b7280}dd{margin:0;overflow-wrap:anywhere}
.badge{font-size:12px;font-weight:600;padding:2px 8px;border-radius:10px;white-space:nowrap}
.ok{background:#dcfce7;color:#166534}.bad{background:#fee2e2;color:#991b1b}.warn{background:#fef3c7;color:#92400e}
ul{margin:0;padding-left:18px}li{overflow-wrap:anywhere}
`;

/**
 * The status page: one column of cards a person reads on a phone, rendered
 * on the server with no script, reloading itself every REFRESH_S seconds.
 */
export async function renderStatusPage(view: BridgeView, activity: Activity, now = Date.now()): Promise<string> {
  const [frozen, queue] = await Promise.all([view.frozen(), view.queue()]);
  const frozenBy = new Map(frozen.map((record) => [record.device, record]));

  const devices = view.devices().map((name) => {
    const seen = activity.devices.get(name);
    const freeze = frozenBy.get(name);
    const { today, week } = activity.counts(seen);
    const state = freeze ? html`<span class="badge bad">FROZEN</span>` : html`<span class="badge ok">active</span>`;
    return html`<section class="card device" data-device="${name}">
      <h3><span>${name}</span>${state}</h3>
      <dl>
        ${
          freeze
            ? html`<dt>frozen</dt>
                <dd>${freeze.reason} (${ago(Date.parse(freeze.frozen_at) || undefined, now)})</dd>`
            : ''
        }
        <dt>last seen</dt>
        <dd>${ago(seen?.lastSeen, now)}${seen?.clientIp ? html` from ${seen.clientIp}` : ''}</dd>
        <dt>connection</dt>
        <dd>${seen ? `${seen.tls ?? 'no TLS'}, ${seen.mechanism ?? 'no AUTH'}` : '–'}</dd>
        <dt>messages</dt>
        <dd>${today} today, ${week} this week</dd>
        <dt>last delivery</dt>
        <dd>
          ${
            seen?.lastDelivery
              ? html`<span class="badge ${OUTCOME_BADGE[seen.lastDelivery.outcome]}">${seen.lastDelivery.outcome}</span>
                  ${seen.lastDelivery.detail} (${ago(seen.lastDelivery.at, now)})`
              : html`<span class="muted">none</span>`
          }
        </dd>
      </dl>
    </section>`;
  });

  const upstreams = view.upstreams().map(({ name, target }) => {
    const state = activity.upstreams.get(name);
    const failing = state?.failingSince !== undefined;
    return html`<section class="card upstream" data-upstream="${name}">
      <h3><span>${name}</span>${failing ? html`<span class="badge bad">FAILING</span>` : html`<span class="badge ok">ok</span>`}</h3>
      <dl>
        <dt>server</dt>
        <dd>${target}</dd>
        <dt>last success</dt>
        <dd>${ago(state?.lastSuccess, now)}</dd>
        ${
          state?.lastError
            ? html`<dt>last error</dt>
                <dd>${state.lastError.response} (${ago(state.lastError.at, now)})</dd>
                <dt>hint</dt>
                <dd>${hintFor(state.lastError.response)}</dd>`
            : ''
        }
        ${
          failing
            ? html`<dt>failing since</dt>
                <dd>${ago(state.failingSince, now)}</dd>`
            : ''
        }
        ${
          state?.backoffUntil && state.backoffUntil > now
            ? html`<dt>backing off</dt>
                <dd>next try ${ago(state.backoffUntil, now)}</dd>`
            : ''
        }
      </dl>
    </section>`;
  });

  const failures = queue.latestFailed.map(
    (failure) =>
      html`<li>
        <code>${failure.id}</code> from ${failure.device} via ${failure.upstream}, ${ago(failure.failedAt, now)}: ${failure.reason ?? ''}
      </li>`,
  );
  const expiry = view.certificateExpiry();
  const expiresSoon = expiry !== undefined && expiry.getTime() - now < 14 * 86_400_000;

  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width,initial-scale=1" />
        <meta http-equiv="refresh" content="${REFRESH_S}" />
        <title>smtp-bridge on ${view.hostname}</title>
        <style>
          ${new Markup(STYLE)}
        </style>
      </head>
      <body>
        <h1>smtp-bridge on ${view.hostname}</h1>
        <p class="muted">as of ${new Date(now).toISOString()}; refreshes every ${REFRESH_S} s</p>
        <h2>Devices</h2>
        ${devices}
        <h2>Upstreams</h2>
        ${upstreams}
        <h2>Queue</h2>
        <section class="card queue">
          <dl>
            <dt>waiting</dt>
            <dd>${queue.count} message${queue.count === 1 ? '' : 's'}</dd>
            <dt>oldest</dt>
            <dd>${queue.oldestReceivedAt === undefined ? '–' : html`received ${ago(queue.oldestReceivedAt, now)}`}</dd>
            <dt>failed area</dt>
            <dd>${queue.failedCount} message${queue.failedCount === 1 ? '' : 's'} (see <code>smtp-bridge queue failed</code>)</dd>
          </dl>
          ${
            failures.length
              ? html`<h3>Latest failures</h3>
                  <ul>
                    ${failures}
                  </ul>`
              : ''
          }
        </section>
        <h2>Certificate</h2>
        <section class="card certificate">
          <dl>
            <dt>expires</dt>
            <dd>
              ${
                expiry
                  ? html`<span class="badge ${expiresSoon ? 'bad' : 'ok'}">${expiry.toISOString().slice(0, 10)}</span>
                      ${ago(expiry.getTime(), now)}`
                  : '–'
              }
            </dd>
          </dl>
        </section>
      </body>
    </html> `.html;
}
