import { describe, expect, it } from 'vitest';
import { escapeXmlText, toXmlDocument, XML_PROLOG } from '../../src/sim/xml.js';

describe('toXmlDocument', () => {
  it('nests objects and repeats list elements under their key', () => {
    expect(
      toXmlDocument('DescribeRegionsResponse', {
        RequestId: 'R',
        Regions: { Region: [{ RegionId: 'a' }, { RegionId: 'b' }] },
        Skipped: undefined,
      }),
    ).toBe(
      `${XML_PROLOG}<DescribeRegionsResponse><RequestId>R</RequestId><Regions><Region><RegionId>a</RegionId></Region><Region><RegionId>b</RegionId></Region></Regions></DescribeRegionsResponse>`,
    );
  });

  it('escapes markup and drops characters XML cannot carry', () => {
    expect(escapeXmlText('a<b>&"c\'\u0001')).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
    expect(toXmlDocument('Error', { 'Bad Name': 1, '9x': true })).toBe(
      `${XML_PROLOG}<Error><Bad_Name>1</Bad_Name><_9x>true</_9x></Error>`,
    );
  });
});
