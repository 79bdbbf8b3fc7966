import { InvalidInputError } from '../validation.js';

/**
 * Reads aliyun-cli style API parameters (`--IpsecServerId iss-1`, `--LocalSubnet=10.0.0.0/24`)
 * from the tokens commander left unparsed. API parameter names are PascalCase, which keeps them
 * apart from the CLI's own lower-case flags.
 */
export function parseApiParams(tokens: readonly string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index] as string;
    const match = /^--([A-Z][A-Za-z0-9.]*)(?:=(.*))?$/s.exec(token);
    if (!match) {
      throw new InvalidInputError('arguments', [
        {
          // Up to the `=` only: in `--psk=...` what follows is a secret.
          field: token.startsWith('-') ? (token.split('=')[0] as string) : token,
          rule: 'expected an API parameter as --Name value (names start with a capital letter)',
        },
      ]);
    }
    const name = match[1] as string;
    let value = match[2];
    if (value === undefined) {
      const next = tokens[index + 1];
      if (next === undefined)
        throw new InvalidInputError('arguments', [{ field: name, rule: 'is missing its value' }]);
      value = next;
      index++;
    }
    if (name in params)
      throw new InvalidInputError('arguments', [{ field: name, rule: 'is given more than once' }]);
    params[name] = value;
  }
  return params;
}
