// The VM scenarios' entry point: the guest image and QEMU runner shared with the demo
// (examples/vm/), and whether this machine can run them.
import { hasTool, inCI } from '../helpers.js';
import { guestImage } from '../../examples/vm/image.js';
import { QEMU } from '../../examples/vm/qemu-guest.js';

export { guestImage, helperBinary } from '../../examples/vm/image.js';
export { Vm, killAll, accelArgs, qemuHasDgram, QEMU } from '../../examples/vm/qemu-guest.js';

/** Why VM tests cannot run here, or undefined. In CI a missing tool or a failed image build throws. */
export function vmSkipReason(): string | undefined {
  // hasTool throws in CI, so outside CI alone a missing tool becomes the skip reason.
  const missing = [QEMU, 'apt-get', 'dpkg-deb', 'gcc'].find((t) => !hasTool(t));
  return missing !== undefined ? `${missing} is not installed` : imageSkipReason();
}

function imageSkipReason(): string | undefined {
  try {
    guestImage();
    return undefined;
  } catch (e) {
    if (inCI) throw e;
    return `cannot build the guest image: ${(e as Error).message}`;
  }
}
