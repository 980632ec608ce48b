// `--runtime NAME` for run and doctor: a name the policy schema does not know is refused with
// the known ones listed (the schema's enum is the list, so the CLI cannot drift from it).
import { InvalidArgumentError, Option } from 'commander';
import { runtimeNames } from '../../policy/schema.js';
import { escapeText } from '../../util/display.js';

const knownRuntimes: readonly string[] = runtimeNames;

export function runtimeOption(description: string): Option {
  return new Option('--runtime <name>', `${description} (${knownRuntimes.join(', ')})`).argParser(
    (v: string) => {
      if (!knownRuntimes.includes(v)) {
        throw new InvalidArgumentError(
          `unknown runtime "${escapeText(v)}"; known runtimes are ${knownRuntimes.join(', ')}`,
        );
      }
      return v;
    },
  );
}
