import { describe, expect, it } from 'vitest';
import { prepareSubmission } from '../../src/cli/commands/submit.js';
import { InvalidInputError } from '../../src/validation.js';

const base = { '--server': 'iss-1', '--region': 'cn-shanghai', '--set': ['LocalSubnet=10.0.0.0/24'] };

describe('ipsec-fleet submit --profile', () => {
  it('sends the profile when given, and nothing when not', async () => {
    expect((await prepareSubmission({ ...base, '--profile': 'prod-b' })).body.profile).toBe('prod-b');
    expect('profile' in (await prepareSubmission(base)).body).toBe(false);
  });

  it('refuses a malformed profile name', async () => {
    await expect(prepareSubmission({ ...base, '--profile': 'no spaces' })).rejects.toThrow(InvalidInputError);
  });
});
