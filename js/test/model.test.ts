/**
 * Unit tests of the panel's DOM-free logic, run with node's own test runner (`npm test`).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { inflateSync } from 'node:zlib';

import {
  cannotPublishText,
  commandUrl,
  curlLine,
  endpointOf,
  exampleValue,
  exportLine,
  fitsInputs,
  hubTokenUrl,
  IAccess,
  IEndpoint,
  IInputSpec,
  IRecordedExample,
  mayPublish,
  notebookName,
  parseAccess,
  parseEndpoints,
  parseExamples,
  parseActivity,
  parseHubState,
  parseInputs,
  publishWhereText,
  sparkRuns,
  requestBody,
  sampleBody,
  serveMessage,
  shellQuote,
  statusClass,
  statusText,
  tokenText,
  whoText
} from '../src/model';

const ENDPOINT: IEndpoint = {
  kernel_id: 'k-1',
  commands: ['classify', 'shout'],
  url: '/user/ann/algolink/kernels/k-1/',
  notebook: 'work/quickstart.ipynb'
};

test('parseEndpoints keeps well-formed endpoints and drops the rest', () => {
  const endpoints = parseEndpoints([
    { kernel_id: 'a', commands: ['x', 3, 'y'], url: '/algolink/kernels/a/', notebook: 'n.ipynb' },
    { kernel_id: 'b', url: '/algolink/kernels/b/', notebook: null },
    { commands: ['z'], url: '/nope/' },
    'garbage',
    null
  ]);
  assert.deepEqual(endpoints, [
    { kernel_id: 'a', commands: ['x', 'y'], url: '/algolink/kernels/a/', notebook: 'n.ipynb' },
    { kernel_id: 'b', commands: [], url: '/algolink/kernels/b/', notebook: null }
  ]);
  assert.deepEqual(parseEndpoints({ error: 'no' }), []);
});

test('endpointOf finds the current kernel only', () => {
  const other = { ...ENDPOINT, kernel_id: 'k-2' };
  assert.equal(endpointOf([other, ENDPOINT], 'k-1'), ENDPOINT);
  assert.equal(endpointOf([other], 'k-1'), undefined);
  assert.equal(endpointOf([ENDPOINT], null), undefined);
});

test('statusText counts the commands, singular and plural', () => {
  assert.equal(statusText(ENDPOINT), 'AlgoLink: 2 commands');
  assert.equal(statusText({ ...ENDPOINT, commands: ['one'] }), 'AlgoLink: 1 command');
  assert.equal(statusText({ ...ENDPOINT, commands: [] }), 'AlgoLink: 0 commands');
  assert.equal(statusText(undefined), 'AlgoLink: not serving');
});

test('commandUrl puts the proxy path on the page origin and escapes the command', () => {
  assert.equal(
    commandUrl('http://localhost:8888', ENDPOINT, 'classify'),
    'http://localhost:8888/user/ann/algolink/kernels/k-1/classify'
  );
  assert.equal(
    commandUrl('https://lab.example.org/', { ...ENDPOINT, url: '/algolink/kernels/k-1' }, 'a b'),
    'https://lab.example.org/algolink/kernels/k-1/a%20b'
  );
});

test('exampleValue prefers the default, then a value within the limits', () => {
  assert.equal(exampleValue({ name: 'k', type: 'number', default: 3 }), 3);
  assert.equal(exampleValue({ name: 'k', type: 'number', min: 2, max: 9 }), 2);
  assert.equal(exampleValue({ name: 'k', type: 'number' }), 0);
  assert.equal(exampleValue({ name: 'k', type: 'number', max: 4 }), 0);
  assert.equal(exampleValue({ name: 'k', type: 'number', max: -5, step: 2 }), -6);
  assert.equal(exampleValue({ name: 'c', type: 'category', oneOf: ['red', 'blue'] }), 'red');
  assert.equal(exampleValue({ name: 'b', type: 'boolean' }), false);
  assert.equal(exampleValue({ name: 't', type: 'text' }), 'hello');
  assert.equal(exampleValue({ name: 't', type: 'text', minLength: 8 }), 'hello!!!');
  assert.equal(exampleValue({ name: 't', type: 'text', maxLength: 2 }), 'he');
  assert.deepEqual(exampleValue({ name: 'v', type: 'vector', length: 3 }), [0, 0, 0]);
  assert.deepEqual(
    exampleValue({
      name: 'a',
      type: 'array',
      minLength: 2,
      itemType: { name: '', type: 'category', oneOf: ['x'] }
    }),
    ['x', 'x']
  );
  assert.deepEqual(exampleValue({ name: 'p', type: 'image_point' }), [0.5, 0.5]);
  assert.deepEqual(exampleValue({ name: 'b', type: 'image_bounding_box' }), [0.25, 0.25, 0.75, 0.75]);
  assert.deepEqual(exampleValue({ name: 'l', type: 'image_landmarks', length: 2 }), [
    [0.5, 0.5],
    [0.5, 0.5]
  ]);
  assert.deepEqual(exampleValue({ name: 'f', type: 'file', extension: ['.csv', '.tsv'] }), {
    filename: 'example.csv',
    data: Buffer.from('hello\n').toString('base64')
  });
  assert.match(String(exampleValue({ name: 'd', type: 'directory' })), /^data:application\/zip;base64,UEsFBg/);
});

test('exampleValue: a file or directory default is a server path, so a sample; a null default is left out', () => {
  const withDefault = { hasDefault: true, default: 'models/w.pt' };
  assert.deepEqual(exampleValue({ name: 'f', type: 'file', extension: ['.pt'], ...withDefault }), {
    filename: 'example.pt',
    data: 'aGVsbG8K'
  });
  assert.match(String(exampleValue({ name: 'd', type: 'directory', ...withDefault })), /^data:/);
  assert.equal(exampleValue({ name: 't', type: 'text', hasDefault: true, default: null }), undefined);
  assert.equal(exampleValue({ name: 't', type: 'text', hasDefault: true, default: '' }), '');
  assert.deepEqual(
    sampleBody([
      { name: 'note', type: 'text', hasDefault: true, default: null },
      { name: 'n', type: 'number', hasDefault: true, default: 4 }
    ]),
    { n: 4 }
  );
});

/** The size and first pixel of a data-URI PNG (grayscale, 1 or 8 bits, as samples.ts writes them). */
function pngOf(uri: unknown): { width: number; height: number; depth: number; first: number } {
  const match = /^data:image\/png;base64,(.+)$/.exec(String(uri));
  assert.ok(match, String(uri));
  const png = Buffer.from(match[1], 'base64');
  const idat = png.indexOf('IDAT');
  const raw = inflateSync(png.subarray(idat + 4, idat + 4 + png.readUInt32BE(idat - 4)));
  return {
    width: png.readUInt32BE(16),
    height: png.readUInt32BE(20),
    depth: png[24],
    first: raw[1]
  };
}

test('exampleValue: an image is a white PNG of a size it takes; a segmentation holds a label id', () => {
  assert.deepEqual(pngOf(exampleValue({ name: 'i', type: 'image' })), {
    width: 8,
    height: 8,
    depth: 1,
    first: 0xff
  });
  const sized = pngOf(
    exampleValue({ name: 'i', type: 'image', width: 30, minHeight: 20, maxWidth: 40 })
  );
  assert.deepEqual([sized.width, sized.height], [30, 20]);
  const small = pngOf(exampleValue({ name: 'i', type: 'image', maxWidth: 4, maxHeight: 5 }));
  assert.deepEqual([small.width, small.height], [4, 5]);
  const mask = pngOf(
    exampleValue({
      name: 'm',
      type: 'segmentation',
      width: 5,
      height: 3,
      labelToId: { background: 7, cat: 1 },
      defaultLabel: 'background'
    })
  );
  assert.deepEqual(mask, { width: 5, height: 3, depth: 8, first: 7 });
});

test('shellQuote leaves plain words and quotes the rest, single quotes included', () => {
  assert.equal(shellQuote('http://h:1/a/b'), 'http://h:1/a/b');
  assert.equal(shellQuote('{"a": 1}'), `'{"a": 1}'`);
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
});

const TOKEN_ACCESS: IAccess = { mode: 'token', xsrf: true };

test('curlLine reads the Jupyter token from $JUPYTER_TOKEN and sends JSON', () => {
  const line = curlLine(
    'http://localhost:8888/algolink/kernels/k-1/shout',
    { text: 'hi there', times: 1 },
    TOKEN_ACCESS
  );
  assert.equal(
    line,
    `curl -X POST -H "Authorization: token $JUPYTER_TOKEN" -H 'Content-Type: application/json' ` +
      `-d '{"text":"hi there","times":1}' http://localhost:8888/algolink/kernels/k-1/shout`
  );
  // Not knowing the server's way (the extension did not say), the line still reads the variable.
  assert.equal(curlLine('http://h/x', {}), curlLine('http://h/x', {}, TOKEN_ACCESS));
  for (const mode of ['hub', 'password', 'other'] as const) {
    assert.ok(curlLine('http://h/x', {}, { mode, xsrf: true }).includes('$JUPYTER_TOKEN'), mode);
  }
});

test('curlLine without authentication: no token, and what the XSRF check asks of a POST', () => {
  const line = curlLine('http://h/x', { a: 1 }, { mode: 'none', xsrf: true });
  assert.ok(!line.includes('Authorization') && !line.includes('JUPYTER_TOKEN'), line);
  assert.ok(line.includes(`-H 'X-XSRFToken: algolink' -b _xsrf=algolink`), line);
  const unchecked = curlLine('http://h/x', { a: 1 }, { mode: 'none', xsrf: false });
  assert.ok(!unchecked.includes('xsrf') && !unchecked.includes('XSRF'), unchecked);
});

/** The words a real POSIX shell makes of a line (`printf %s\\n` prints each on its own line). */
function shellWords(line: string, env: Record<string, string> = {}): string[] {
  return execFileSync('sh', ['-c', line.replace(/^curl/, "printf '%s\\n'")], {
    env: { ...env, PATH: process.env.PATH ?? '/usr/bin:/bin' }
  })
    .toString()
    .trimEnd()
    .split('\n');
}

test('curlLine output runs in a real shell as one well-formed command', () => {
  const body = requestBody([
    { name: 'q', type: 'text', default: "it's a 'test' $HOME `id` \\ \"quoted\"" },
    { name: 'photo', type: 'image' },
    { name: 'doc', type: 'file' }
  ]).body;
  const words = shellWords(curlLine('http://h/algolink/kernels/k/x', body, TOKEN_ACCESS), {
    JUPYTER_TOKEN: 'abc'
  });
  assert.deepEqual(words, [
    '-X',
    'POST',
    '-H',
    'Authorization: token abc',
    '-H',
    'Content-Type: application/json',
    '-d',
    JSON.stringify(body),
    'http://h/algolink/kernels/k/x'
  ]);
  assert.deepEqual(Object.keys(JSON.parse(words[7])), ['q', 'photo', 'doc']);
});

test('exportLine sets the token exactly, whatever it holds', () => {
  assert.equal(exportLine('0123abcd'), 'export JUPYTER_TOKEN=0123abcd');
  for (const token of ['0123abcd', "it's $odd `x`", 'a b']) {
    const out = execFileSync('sh', ['-c', `${exportLine(token)}\nprintf %s "$JUPYTER_TOKEN"`], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }
    }).toString();
    assert.equal(out, token);
  }
});

test('hubTokenUrl is the hub token page', () => {
  assert.equal(hubTokenUrl('', '/hub/'), '/hub/token');
  assert.equal(hubTokenUrl('https://hub.example.org', '/hub'), 'https://hub.example.org/hub/token');
});

const SHOUT_INPUTS: IInputSpec[] = [
  { name: 'words', type: 'text' },
  { name: 'times', type: 'number', hasDefault: true, default: 1 }
];

test('requestBody: the newest recorded example that still fits, else a sample', () => {
  const examples: IRecordedExample[] = [
    { file: 'algolink_examples/shout/004.json', inputs: { words: 'x', volume: 11 } },
    { file: 'algolink_examples/shout/003.json', inputs: { times: 2 } },
    { file: 'algolink_examples/shout/002.json', inputs: { words: 'recorded' } },
    { file: 'algolink_examples/shout/001.json', inputs: { words: 'older', times: 3 } }
  ];
  assert.deepEqual(requestBody(SHOUT_INPUTS, examples), {
    body: { words: 'recorded' },
    example: 'algolink_examples/shout/002.json'
  });
  assert.deepEqual(requestBody(SHOUT_INPUTS, examples.slice(0, 2)), {
    body: { words: 'hello', times: 1 },
    example: null
  });
  assert.deepEqual(requestBody(SHOUT_INPUTS), { body: { words: 'hello', times: 1 }, example: null });
  // The spec could not be read: the newest example, else an empty body.
  assert.equal(requestBody(null, examples).example, 'algolink_examples/shout/004.json');
  assert.deepEqual(requestBody(null), { body: {}, example: null });
  assert.ok(fitsInputs({}, [{ name: 'n', type: 'number', hasDefault: true, default: 1 }]));
  assert.ok(!fitsInputs({}, SHOUT_INPUTS));
});

test('parseAccess and parseExamples read the server extension and drop the rest', () => {
  assert.deepEqual(parseAccess({ mode: 'token', xsrf: true }), { mode: 'token', xsrf: true });
  assert.deepEqual(parseAccess({ mode: 'none', xsrf: false }), { mode: 'none', xsrf: false });
  assert.deepEqual(parseAccess({ mode: 'none' }), { mode: 'none', xsrf: true });
  assert.equal(parseAccess({ mode: 'magic' }), null);
  assert.equal(parseAccess(null), null);
  assert.deepEqual(
    parseExamples({
      examples: [
        { file: 'algolink_examples/a/002.json', inputs: { x: 1 } },
        { file: 'algolink_examples/a/001.json', inputs: [1] },
        { inputs: {} }
      ]
    }),
    [{ file: 'algolink_examples/a/002.json', inputs: { x: 1 } }]
  );
  assert.deepEqual(parseExamples({ error: 'no' }), []);
});

test('parseInputs reads a model server command spec', () => {
  const inputs = parseInputs({
    name: 'style',
    inputs: [
      { name: 'photo', type: 'image', channels: 3, width: 64, height: null, description: null },
      { name: 'mood', type: 'category', oneOf: ['calm', 'wild'], default: null },
      { name: 'mask', type: 'segmentation', labelToId: { bg: 0, cat: 'x' }, defaultLabel: 'bg' },
      { name: 'tags', type: 'array', itemType: { type: 'text', minLength: 2 }, minLength: 1 },
      { name: 'doc', type: 'file', extension: ['.csv'], default: 'd.csv' },
      { type: 'text' }
    ],
    outputs: []
  });
  assert.ok(inputs);
  assert.deepEqual(
    inputs.map(i => [i.name, i.type, i.hasDefault]),
    [
      ['photo', 'image', false],
      ['mood', 'category', true],
      ['mask', 'segmentation', false],
      ['tags', 'array', false],
      ['doc', 'file', true]
    ]
  );
  assert.equal(inputs[0].width, 64);
  assert.equal(inputs[0].height, undefined);
  assert.deepEqual(inputs[1].oneOf, ['calm', 'wild']);
  assert.deepEqual(inputs[2].labelToId, { bg: 0 });
  assert.equal(inputs[3].itemType?.minLength, 2);
  assert.deepEqual(inputs[4].extension, ['.csv']);
  assert.equal(parseInputs({ error: 'Unknown command' }), null);
  assert.deepEqual(parseInputs({ name: 'x', inputs: [] }), []);
});

test('parseHubState: unconfigured, error and service list', () => {
  assert.deepEqual(parseHubState({ configured: false, message: 'Set ALGOLINK_HUB_URL.' }), {
    kind: 'unconfigured',
    message: 'Set ALGOLINK_HUB_URL.'
  });
  assert.deepEqual(parseHubState({ error: 'Cannot reach the hub.' }, 502), {
    kind: 'error',
    message: 'Cannot reach the hub.'
  });
  assert.equal(parseHubState('<html>', 500).kind, 'error');
  const state = parseHubState({
    configured: true,
    hub_url: 'http://127.0.0.1:8800',
    services: [
      {
        project: 'demo',
        name: 'digits',
        group: 'vision',
        status: 'online',
        published_version: 2,
        page_url: 'http://127.0.0.1:8800/projects/demo/services/digits',
        api_url: 'http://127.0.0.1:8800/serve/demo/digits/'
      },
      { project: 'demo', name: 'draft', status: 'registered', published_version: null },
      { name: 'orphan' }
    ]
  });
  assert.equal(state.kind, 'services');
  if (state.kind === 'services') {
    assert.equal(state.hubUrl, 'http://127.0.0.1:8800');
    assert.deepEqual(
      state.services.map(s => [s.name, s.status, s.published_version, s.api_url]),
      [
        ['digits', 'online', 2, 'http://127.0.0.1:8800/serve/demo/digits/'],
        ['draft', 'registered', null, null]
      ]
    );
  }
});

/** The hub route's answer for a user, as the server extension writes it. */
function signedIn(user: Record<string, unknown>, may: Record<string, unknown>): unknown {
  return {
    configured: true,
    signed_in: true,
    hub_url: 'http://hub:8800',
    user: { projects: {}, token: null, admin: false, ...user },
    may: { projects: [], create_projects: false, viewer_of: [], reason: null, ...may },
    services: [
      { project: 'demo', name: 'digits', status: 'online', published_version: 1, role: 'viewer' }
    ]
  };
}

test('parseHubState: who is signed in and what they may publish to', () => {
  const dev = parseHubState(
    signedIn(
      {
        name: 'ada',
        display_name: 'Ada Lovelace',
        projects: { demo: 'developer', seen: 'viewer' },
        token: {
          name: 'cli-lab',
          scopes: ['invoke', 'manage', 'metrics', 'read', 'write'],
          project: null,
          service: null,
          expires_at: null,
          limits: []
        }
      },
      { publish: true, projects: ['demo'], create_projects: true, viewer_of: ['seen'] }
    )
  );
  assert.equal(dev.kind, 'services');
  if (dev.kind !== 'services' || !dev.user || !dev.rights) {
    return;
  }
  assert.equal(whoText(dev.user), 'Ada Lovelace (ada)');
  assert.equal(tokenText(dev.user), null); // a token with all its user's say: nothing to add
  assert.deepEqual(dev.user.projects, { demo: 'developer', seen: 'viewer' });
  assert.equal(dev.services[0].role, 'viewer');
  assert.equal(mayPublish(dev), true);
  assert.equal(publishWhereText(dev.rights), 'You may publish to demo, a new project of your own.');
  assert.equal(cannotPublishText(dev.user, dev.rights), '');

  const viewer = parseHubState(
    signedIn(
      {
        name: 'vic',
        display_name: 'vic',
        token: {
          name: 'lab',
          scopes: ['invoke', 'read'],
          project: 'demo',
          service: null,
          expires_at: '2030-01-01T00:00:00Z',
          limits: ['limited to the project demo']
        }
      },
      { publish: false, viewer_of: ['demo'], reason: 'viewer' }
    )
  );
  assert.equal(viewer.kind, 'services');
  if (viewer.kind !== 'services' || !viewer.user) {
    return;
  }
  assert.equal(whoText(viewer.user), 'vic');
  assert.equal(
    tokenText(viewer.user),
    'Token lab: limited to the project demo; scopes invoke, read; expires 2030-01-01T00:00:00Z.'
  );
  assert.equal(mayPublish(viewer), false);
  assert.equal(
    cannotPublishText(viewer.user, viewer.rights),
    'You are a viewer of demo: you may call the services but not publish. To publish, ask a ' +
      'project owner to make you a developer.'
  );
  const scope = parseHubState(
    signedIn(
      { name: 'rob', token: { name: 'ro', scopes: ['read'], limits: ['scopes read'] } },
      { publish: false, reason: 'scope' }
    )
  );
  if (scope.kind === 'services') {
    assert.match(cannotPublishText(scope.user, scope.rights), /^The token ro cannot publish/);
    assert.match(cannotPublishText(scope.user, scope.rights), /it has read\. Run `algolink login`/);
  }
});

test('parseHubState: signed out, and an older answer without a user', () => {
  const out = parseHubState({ configured: true, signed_in: false, hub_url: 'http://hub:8800' });
  assert.deepEqual(out, { kind: 'signed-out', hubUrl: 'http://hub:8800' });
  assert.equal(mayPublish(out), false);
  const old = parseHubState({ configured: true, hub_url: 'http://hub:8800', services: [] });
  assert.equal(old.kind, 'services');
  if (old.kind === 'services') {
    assert.equal(old.user, null);
    assert.equal(old.rights, null);
  }
  assert.equal(mayPublish(old), null); // unknown: the publish command stays
  assert.equal(mayPublish(null), null);
  assert.equal(mayPublish({ kind: 'error', message: 'x' }), null);
});

test('statusClass groups the hub statuses', () => {
  assert.equal(statusClass('online'), 'online');
  assert.equal(statusClass('starting'), 'building');
  assert.equal(statusClass('building'), 'building');
  assert.equal(statusClass('failed'), 'failed');
  assert.equal(statusClass('offline'), 'offline');
  assert.equal(statusClass('registered'), 'registered');
  assert.equal(statusClass('something new'), 'registered');
});

test('notebookName is the file name', () => {
  assert.equal(notebookName('work/quickstart.ipynb'), 'quickstart.ipynb');
  assert.equal(notebookName(null), 'a kernel without a notebook');
});

test('serveMessage names the commands and never a URL or token', () => {
  assert.equal(
    serveMessage(ENDPOINT),
    'Serving 2 commands (classify, shout): see the AlgoLink panel for the URLs and curl lines.'
  );
  assert.match(serveMessage({ ...ENDPOINT, commands: ['one'] }), /^Serving 1 command \(one\)/);
  assert.match(serveMessage({ ...ENDPOINT, commands: [] }), /no command yet/);
  assert.match(serveMessage(undefined), /does not see it yet/);
});

test('sparkRuns breaks the line where a minute says nothing and scales to the largest value', () => {
  assert.deepEqual(sparkRuns([null, 0, 2, 4, null, 2], 50, 10), ['10,10 20,5 30,0', '50,5']);
  assert.deepEqual(sparkRuns([null, null], 10, 10), []);
  assert.deepEqual(sparkRuns([0, 0], 10, 10), ['0,10 10,10']);
});

test('a service\'s activity is read from the hub route, and is null when the hub gives none', () => {
  const state = parseHubState(
    {
      configured: true,
      signed_in: true,
      hub_url: 'http://hub',
      services: [
        {
          project: 'p',
          name: 's',
          status: 'online',
          activity: { requests_per_minute: [null, 3, 'x'], p95: [0.01], requests: 3, errors: 1 }
        },
        { project: 'p', name: 't', status: 'offline' }
      ]
    },
    200
  );
  assert.equal(state.kind, 'services');
  if (state.kind !== 'services') {
    return;
  }
  assert.deepEqual(state.services[0].activity, {
    requestsPerMinute: [null, 3, null],
    p95: [0.01],
    requests: 3,
    errors: 1
  });
  assert.equal(state.services[1].activity, null);
  assert.equal(parseActivity('nope'), null);
});
