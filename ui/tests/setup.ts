// jsdom lacks a few browser APIs the app uses; these stand-ins do nothing visible.
class RO {
  observe() {}
  unobserve() {}
  disconnect() {}
}
(globalThis as unknown as { ResizeObserver: typeof RO }).ResizeObserver = RO;
URL.createObjectURL = () => 'blob:test';
URL.revokeObjectURL = () => {};
HTMLCanvasElement.prototype.getContext = (() => null) as unknown as HTMLCanvasElement['getContext'];
if (!Element.prototype.scrollTo) Element.prototype.scrollTo = () => {};
