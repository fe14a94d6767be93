import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

/**
 * Reads a password the way passwd(1) does: on a terminal, a prompt on stderr
 * and typing without echo, asked twice; otherwise the first line of standard
 * input, so scripts can pipe it in. One trailing newline is not part of it.
 */
export async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) return firstLine(await readAll(process.stdin));
  const password = await promptHidden('Password: ');
  if (!password) throw new Error('empty password');
  if ((await promptHidden('Again: ')) !== password) throw new Error('the two passwords differ');
  return password;
}

async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) text += chunk.toString();
  return text;
}

function firstLine(text: string): string {
  const line = text.split(/\r?\n/)[0];
  if (!line) throw new Error('no password on standard input');
  return line;
}

/**
 * readline over the terminal, its echo sent nowhere: the prompt goes to
 * stderr by hand, and only once readline has put the terminal in raw mode,
 * or a quick typist's password would be echoed by the terminal itself.
 */
function promptHidden(prompt: string): Promise<string> {
  const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input: process.stdin, output: silent, terminal: true });
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    rl.once('line', (line) => {
      rl.close();
      process.stderr.write('\n');
      resolve(line);
    });
    rl.once('SIGINT', () => {
      rl.close();
      process.stderr.write('\n');
      reject(new Error('interrupted'));
    });
  });
}
