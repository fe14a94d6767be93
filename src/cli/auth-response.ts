import { cramMd5Answer, digestMd5Answer, type ClientAnswer } from '../auth/client-response.js';
import { parseCommandArgs, runCommand, UsageError } from './args.js';
import { readPassword } from './password-input.js';

const HELP = `usage: smtp-bridge auth-response cram-md5|digest-md5 USER PASSWORD CHALLENGE [options]

Computes what a client answers to a server's AUTH challenge, to paste into
"openssl s_client" when testing by hand. CHALLENGE is the base64 text after
"334 " in the server's reply. The answer is printed alone on standard
output; the working (decoded challenge, digest, and for DIGEST-MD5 the
rspauth the server must prove itself with) goes to standard error.

Give PASSWORD as "-" to read it from standard input (or without echo on a
terminal), which keeps it out of the shell history and the process list.

options (digest-md5):
      --digest-uri URI   the digest-uri to claim (default smtp/REALM, the challenge's realm)
      --cnonce TEXT      a fixed client nonce, to reproduce a recorded exchange (default random)
      --authzid NAME     an authorization identity to ask for
  -h, --help             show this help`;

export function run(argv: string[]): Promise<number> {
  return runCommand(async () => {
    const { values, positionals } = parseCommandArgs(
      argv,
      { 'digest-uri': { type: 'string' }, cnonce: { type: 'string' }, authzid: { type: 'string' } },
      HELP,
      true,
    );
    if (positionals.length !== 4) throw new UsageError(`expected 4 arguments, got ${positionals.length}\n\n${HELP}`);
    const [mechanism, username, given, challenge] = positionals;
    const password = given === '-' ? await readPassword() : given;
    let answer: ClientAnswer;
    switch (mechanism.toLowerCase()) {
      case 'cram-md5':
        answer = cramMd5Answer(username, password, challenge);
        break;
      case 'digest-md5':
        answer = digestMd5Answer(username, password, challenge, {
          digestUri: values['digest-uri'],
          cnonce: values.cnonce,
          authzid: values.authzid,
        });
        break;
      default:
        throw new UsageError(`unknown mechanism "${mechanism}" (use cram-md5 or digest-md5)\n\n${HELP}`);
    }
    for (const [label, value] of answer.working) console.error(`${label.padEnd(20)} ${value}`);
    console.log(answer.response);
    return 0;
  });
}
