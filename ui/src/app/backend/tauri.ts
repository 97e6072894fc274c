// The Tauri implementation: each method is one typed `invoke` of a command from the generated
// table. Bytes travel as raw IPC bodies, never as JSON and never through a file.
import { invoke } from '@tauri-apps/api/core';
import type { AppError, Commands } from '../generated/bindings';
import { type Backend, BackendError } from './backend';

function isAppError(e: unknown): e is AppError {
  return typeof e === 'object' && e !== null && 'code' in e && 'message' in e;
}

async function call<K extends keyof Commands>(
  name: K,
  args: Commands[K]['args'],
): Promise<Commands[K]['returns']> {
  try {
    return await invoke<Commands[K]['returns']>(name, args);
  } catch (e) {
    if (isAppError(e)) throw new BackendError(e.code, e.message, e.wait_secs, e.child);
    throw new BackendError('internal', String(e));
  }
}

const none = {} as Record<string, never>;

export class TauriBackend implements Backend {
  status = () => call('app_status', none);
  previewEnrolment = (server: string, fingerprint: string) => call('preview_enrolment', { server, fingerprint });
  enrol = (server: string, code: string, fingerprint: string, device_name: string) =>
    call('enrol', { server, code, fingerprint, device_name });
  staffTiles = () => call('staff_tiles', none);
  unlock = (staff: string, pin: string) => call('unlock', { staff, pin });
  lock = () => call('lock', none);
  touch = () => call('touch', none);
  children = () => call('children', none);
  journal = (child: string) => call('journal', { child });
  revisions = (child: string, entry: string) => call('revisions', { child, entry });
  async stageMedia(bytes: Uint8Array, kind: 'photo' | 'video') {
    try {
      return await invoke<Commands['stage_media']['returns']>('stage_media', bytes, {
        headers: { 'x-sprig-kind': kind },
      });
    } catch (e) {
      if (isAppError(e)) throw new BackendError(e.code, e.message);
      throw new BackendError('internal', String(e));
    }
  }
  discardMedia = (id: string) => call('discard_media', { id });
  observe = (observation: Commands['observe']['args']['observation']) => call('observe', { observation });
  publish = (entry: string) => call('publish', { entry });
  edit = (entry: string, change: Commands['edit']['args']['change']) => call('edit', { entry, change });
  reply = (entry: string, child: string, text: string) => call('reply', { entry, child, text });
  pending = () => call('pending', none);
  approve = (entry: string) => call('approve', { entry });
  reject = (entry: string, reason: string) => call('reject', { entry, reason });
  coverage = (days: number) => call('coverage', { days });
  thumbnail = (sha256: string) => call('thumbnail', { sha256 });
  media = (sha256: string) => call('media', { sha256 });
  syncStatus = () => call('sync_status', none);
  syncNow = () => call('sync_now', none);
  done = () => call('done', none);
}
