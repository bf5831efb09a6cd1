import t from 'tap'
import type { OomwatchEvent } from '../../src/protocol/events.js'
import { formatText } from '../../src/stream/text-format.js'

const hello = (replay: Extract<OomwatchEvent, { type: 'hello' }>['replay']): OomwatchEvent => ({
  type: 'hello',
  version: '0.1.0',
  startedAt: 'at start',
  config: {},
  pyspy: { error: 'not found', remedy: 'install it' },
  agent: { pid: 1 },
  watching: [],
  ...(replay && { replay }),
  seq: 30000,
  ts: 'now',
})

t.test('a text client is told where a paged replay goes on', async t => {
  t.match(
    formatText(hello({ since: 0, count: 10000, missed: 5, truncated: true, next: 10005 })),
    /a page of a longer replay: reconnect with \?since=10005 for more/,
  )
  t.notMatch(formatText(hello({ since: 0, count: 10, missed: 0 })), /a page/, 'a whole replay says nothing of pages')
})
