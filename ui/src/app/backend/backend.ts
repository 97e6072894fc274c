// The one interface every screen talks to. `TauriBackend` calls the Rust commands; the
// in-memory `MemoryBackend` serves component tests. Types come from the generated bindings.
import type {
  AppStatus,
  ChildDto,
  CoverageDto,
  DoneReport,
  EnrolPreviewDto,
  EntryChange,
  EntryDto,
  NewObservation,
  RevisionDto,
  SessionInfo,
  StaffTileDto,
  StagedMedia,
  SyncStatus,
} from '../generated/bindings';

export interface Backend {
  status(): Promise<AppStatus>;
  previewEnrolment(server: string, fingerprint: string): Promise<EnrolPreviewDto>;
  enrol(server: string, code: string, fingerprint: string, deviceName: string): Promise<AppStatus>;
  staffTiles(): Promise<StaffTileDto[]>;
  unlock(staff: string, pin: string): Promise<SessionInfo>;
  lock(): Promise<void>;
  touch(): Promise<void>;
  children(): Promise<ChildDto[]>;
  journal(child: string): Promise<EntryDto[]>;
  revisions(child: string, entry: string): Promise<RevisionDto[]>;
  stageMedia(bytes: Uint8Array, kind: 'photo' | 'video'): Promise<StagedMedia>;
  discardMedia(id: string): Promise<void>;
  observe(observation: NewObservation): Promise<string>;
  publish(entry: string): Promise<void>;
  edit(entry: string, change: EntryChange): Promise<void>;
  reply(entry: string, child: string, text: string): Promise<string>;
  pending(): Promise<EntryDto[]>;
  approve(entry: string): Promise<void>;
  reject(entry: string, reason: string): Promise<void>;
  coverage(days: number): Promise<CoverageDto>;
  thumbnail(sha256: string): Promise<ArrayBuffer>;
  media(sha256: string): Promise<ArrayBuffer>;
  syncStatus(): Promise<SyncStatus>;
  syncNow(): Promise<SyncStatus>;
  done(): Promise<DoneReport>;
}

/** A refusal from the backend: the stable code decides what the UI shows. */
export class BackendError extends Error {
  readonly code: string;
  readonly waitSecs: number | null;
  readonly child: string | null;

  constructor(code: string, message: string, waitSecs: number | null = null, child: string | null = null) {
    super(message);
    this.name = 'BackendError';
    this.code = code;
    this.waitSecs = waitSecs;
    this.child = child;
  }
}

export function errorCode(e: unknown): string {
  return e instanceof BackendError ? e.code : 'internal';
}
