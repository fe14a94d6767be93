import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommandStream } from '../../src/inbound/command-stream.js';

/**
 * DATA through the bridge's parser, the message split into two chunks at
 * every possible point (a TCP segment may end anywhere): where does DATA end,
 * what is the message, and what is read as the next command.
 */
async function readData(bareLfDataEnd: boolean, input: string, splitAt: number): Promise<{ message: string; commands: string[] }> {
  const parser = new CommandStream();
  const commands: string[] = [];
  let message = '';
  const ended = new Promise<void>((resolve) => {
    parser.oncommand = (command, callback) => {
      const line = command.toString('latin1');
      if (line === 'DATA') {
        parser.bareLfDataEnd = bareLfDataEnd;
        const stream = parser.startDataMode();
        stream.on('data', (chunk: Buffer) => (message += chunk.toString('latin1')));
        stream.on('end', () => parser.continue());
      } else commands.push(line);
      if (line === 'QUIT') resolve();
      callback?.();
    };
  });
  const bytes = Buffer.from(`DATA\r\n${input}`, 'latin1');
  const cut = 'DATA\r\n'.length + splitAt;
  parser.write(bytes.subarray(0, cut));
  parser.write(bytes.subarray(cut));
  await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 200))]);
  return { message, commands };
}

/** Every split of `input` ends DATA with `message` and leaves QUIT as the one command after it. */
async function assertEverySplit(bareLfDataEnd: boolean, input: string, message: string): Promise<void> {
  for (let at = 0; at <= input.length; at++) {
    const read = await readData(bareLfDataEnd, input, at);
    assert.deepEqual(read, { message, commands: ['QUIT'] }, `${JSON.stringify(input)} split at ${at}`);
  }
}

test('with the opt-in, <LF>.<LF> ends DATA wherever the chunks split, and dot-stuffing still unstuffs', async () => {
  await assertEverySplit(true, 'Subject: lf\n\nfirst\n..stuffed\n.\nQUIT\r\n', 'Subject: lf\n\nfirst\n.stuffed\r\n');
});

test('with the opt-in, the mixed forms end DATA too, and <CRLF>.<CRLF> still does', async () => {
  for (const end of ['\r\n.\n', '\n.\r\n', '\r\n.\r\n']) {
    await assertEverySplit(true, `Subject: mixed\r\n\r\nbody${end}QUIT\r\n`, 'Subject: mixed\r\n\r\nbody\r\n');
  }
});

test('with the opt-in, an empty message ended by .<LF> right after DATA', async () => {
  await assertEverySplit(true, '.\nQUIT\r\n', '');
});

test('without the opt-in, <LF>.<LF> is content and what follows it is no command', async () => {
  await assertEverySplit(
    false,
    'Subject: strict\r\n\r\nbefore\n.\nMAIL FROM:<smuggled@example.net>\r\n.\r\nQUIT\r\n',
    'Subject: strict\r\n\r\nbefore\n.\nMAIL FROM:<smuggled@example.net>\r\n',
  );
});
