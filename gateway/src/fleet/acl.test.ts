import { describe, expect, it } from 'vitest';
import { aclAllows, filterCovers, mosquittoAcl } from './acl.js';

describe('fleet ACL', () => {
  it('matches MQTT filters, wildcards in requests only by broader ones', () => {
    expect(filterCovers('a/+/c', 'a/b/c')).toBe(true);
    expect(filterCovers('a/#', 'a/b/c')).toBe(true);
    expect(filterCovers('a/b/c', 'a/+/c')).toBe(false);
    expect(filterCovers('a/+/c', 'a/#')).toBe(false);
    expect(filterCovers('a/b', 'a/b/c')).toBe(false);
  });
  it('gives an agent its own cmd to read and its own status and events to write, nothing else', () => {
    const base = 'bulwark/s1/agents';
    expect(aclAllows('s1', 'agt-a', `${base}/agt-a/cmd`, 'read')).toBe(true);
    expect(aclAllows('s1', 'agt-a', `${base}/agt-a/cmd`, 'write')).toBe(false);
    expect(aclAllows('s1', 'agt-a', `${base}/agt-a/status`, 'write')).toBe(true);
    expect(aclAllows('s1', 'agt-a', `${base}/agt-b/cmd`, 'read')).toBe(false);
    expect(aclAllows('s1', 'agt-a', `${base}/+/cmd`, 'read')).toBe(false);
    expect(aclAllows('s1', 'agt-a', `${base}/agt-b/status`, 'write')).toBe(false);
    expect(aclAllows('s1', 'agt-+', `${base}/agt-+/cmd`, 'read')).toBe(false);
    expect(aclAllows('s1', 'bulwark-gateway', `${base}/agt-b/cmd`, 'write')).toBe(true);
    expect(aclAllows('s1', 'bulwark-gateway', 'bulwark/s2/agents/x/cmd', 'write')).toBe(false);
  });
  it('renders a Mosquitto ACL with patterns on %u', () => {
    expect(mosquittoAcl('s1')).toContain('pattern read bulwark/s1/agents/%u/cmd');
    expect(mosquittoAcl('s1')).toContain('user bulwark-gateway\ntopic readwrite bulwark/s1/#');
  });
});
