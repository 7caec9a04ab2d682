/**
 * Unit tests of the panel's DOM-free logic, run with node's own test runner (`npm test`).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

import {
  commandUrl,
  curlLine,
  endpointOf,
  exampleValue,
  IEndpoint,
  notebookName,
  parseEndpoints,
  parseHubState,
  parseInputs,
  serveMessage,
  shellQuote,
  statusClass,
  statusText
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

test('exampleValue prefers the default, then a value the type accepts', () => {
  assert.equal(exampleValue({ name: 'k', type: 'number', default: 3 }), 3);
  assert.equal(exampleValue({ name: 'k', type: 'number', min: 2 }), 2);
  assert.equal(exampleValue({ name: 'k', type: 'number' }), 0);
  assert.equal(exampleValue({ name: 'c', type: 'category', oneOf: ['red', 'blue'] }), 'red');
  assert.equal(exampleValue({ name: 'b', type: 'boolean' }), false);
  assert.equal(exampleValue({ name: 't', type: 'text' }), 'hello');
  assert.equal(exampleValue({ name: 't', type: 'text', default: null }), 'hello');
});

test('shellQuote leaves plain words and quotes the rest, single quotes included', () => {
  assert.equal(shellQuote('http://h:1/a/b'), 'http://h:1/a/b');
  assert.equal(shellQuote('{"a": 1}'), `'{"a": 1}'`);
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
});

test('curlLine uses the Jupyter token variable, JSON for plain inputs', () => {
  const line = curlLine('http://localhost:8888/algolink/kernels/k-1/shout', [
    { name: 'text', type: 'text', default: 'hi there' },
    { name: 'times', type: 'number', min: 1 }
  ]);
  assert.equal(
    line,
    `curl -X POST -H "Authorization: token $JUPYTER_TOKEN" -H 'Content-Type: application/json' ` +
      `-d '{"text":"hi there","times":1}' http://localhost:8888/algolink/kernels/k-1/shout`
  );
  assert.ok(curlLine('http://h/x').includes(`-d '{}'`));
});

test('curlLine sends a multipart form when a command takes an image', () => {
  const line = curlLine('http://h/algolink/kernels/k/classify', [
    { name: 'photo', type: 'image' },
    { name: 'top', type: 'number', default: 5 }
  ]);
  assert.ok(line.includes('-F photo=@photo.png'), line);
  assert.ok(line.includes('-F top=5'), line);
  assert.ok(!line.includes('Content-Type'), line);
});

test('curlLine output runs in a real shell as one well-formed command', () => {
  // The quoting is checked by a real POSIX shell: `printf %s\\n` prints each word on its own line.
  const line = curlLine('http://h/algolink/kernels/k/x', [
    { name: 'q', type: 'text', default: "it's a 'test'" }
  ]);
  const words = execFileSync('sh', ['-c', line.replace(/^curl/, "printf '%s\\n'")], {
    env: { JUPYTER_TOKEN: 'abc', PATH: process.env.PATH ?? '/usr/bin:/bin' }
  })
    .toString()
    .trimEnd()
    .split('\n');
  assert.deepEqual(words, [
    '-X',
    'POST',
    '-H',
    'Authorization: token abc',
    '-H',
    'Content-Type: application/json',
    '-d',
    JSON.stringify({ q: "it's a 'test'" }),
    'http://h/algolink/kernels/k/x'
  ]);
});

test('parseInputs reads a model server command spec', () => {
  const inputs = parseInputs({
    name: 'style',
    inputs: [
      { name: 'photo', type: 'image', channels: 3 },
      { name: 'mood', type: 'category', oneOf: ['calm', 'wild'], default: null },
      { type: 'text' }
    ],
    outputs: []
  });
  assert.deepEqual(
    inputs.map(i => [i.name, i.type]),
    [
      ['photo', 'image'],
      ['mood', 'category']
    ]
  );
  assert.deepEqual(inputs[1].oneOf, ['calm', 'wild']);
  assert.deepEqual(parseInputs({ error: 'Unknown command' }), []);
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
