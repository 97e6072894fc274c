import { MemoryBackend, type MemorySeed } from '../src/app/backend/memory';
import type { EntryDto } from '../src/app/generated/bindings';
import { AppState } from '../src/app/state/app.svelte';

const DAY = 86_400_000;
export const NOW = Date.UTC(2026, 10, 30, 10, 0, 0);

function entry(over: Partial<EntryDto> & Pick<EntryDto, 'id' | 'child' | 'text'>): EntryDto {
  return {
    kind: 'observation',
    status: 'published',
    author_name: 'Amara Okafor',
    author_kind: 'staff',
    created_at: NOW - DAY,
    edited_at: null,
    next_steps: '',
    areas: ['mathematics'],
    band: null,
    coel: [],
    with_children: [],
    media: [],
    replies: [],
    ...over,
  };
}

export function seed(): MemorySeed {
  return {
    settingName: 'Acorn Pre-School',
    enrolled: true,
    maxPinFailures: 10,
    staff: [
      { id: 's-amara', name: 'Amara Okafor', initials: 'AO', role: 'practitioner', pin: '2468' },
      { id: 's-morgan', name: 'Morgan Hale', initials: 'MH', role: 'manager', pin: '1357' },
    ],
    children: [
      { id: 'c-ada', name: 'Ada Birchley', initials: 'AB', room: 'Acorns', key_worker_name: 'Amara Okafor', key_worker: 's-amara', photo_consent: 'yes' },
      { id: 'c-bram', name: 'Bram Coldwell', initials: 'BC', room: 'Oaks', key_worker_name: 'Morgan Hale', key_worker: 's-morgan', photo_consent: 'yes' },
      { id: 'c-dev', name: 'Dev Elmsworth', initials: 'DE', room: 'Oaks', key_worker_name: 'Morgan Hale', key_worker: 's-morgan', photo_consent: 'no' },
    ],
    entries: [
      entry({ id: 'e-1', child: 'c-ada', text: 'Counted the conkers to twelve.' }),
      entry({ id: 'e-2', child: 'c-ada', text: 'A draft about the sandpit.', status: 'draft', created_at: NOW - 2 * DAY }),
      entry({ id: 'e-3', child: 'c-bram', text: 'We baked bread at home.', kind: 'parent-contribution', status: 'pending', author_kind: 'parent', author_name: 'Parent of Bram' }),
      entry({ id: 'e-4', child: 'c-dev', text: 'Old one.', created_at: NOW - 40 * DAY }),
    ],
  };
}

export function makeState(over: Partial<MemorySeed> = {}) {
  const backend = new MemoryBackend({ ...seed(), ...over });
  backend.now = () => NOW;
  return { backend, state: new AppState(backend) };
}

export async function unlocked(staff = 's-amara', pin = '2468') {
  const made = makeState();
  await made.backend.unlock(staff, pin);
  await made.state.refresh();
  return made;
}
