/**
 * @module WORM refusals. Every path that could delete or modify a sealed
 * pack or a restore point asks this module first; a refusal is a
 * WormViolation that says what is protected, until when, and why.
 */
export class WormViolation extends Error {
  constructor(readonly object: string, readonly reason: string) {
    super(`WORM: refusing to delete or modify ${object}: ${reason}`);
    this.name = 'WormViolation';
  }
}
