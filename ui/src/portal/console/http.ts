// The console's HTTP implementation: same-origin JSON calls under /api/v1/admin/, with the
// session cookie, through the portal's `call` (which turns refusals into `PortalError`s).
import { call } from '../backend/call';
import { type ConsoleBackend, auditQuery } from './backend';
import type * as T from './types';

const A = '/api/v1/admin';
const id = encodeURIComponent;

export class HttpConsole implements ConsoleBackend {
  devices() {
    return call<T.AdminDevice[]>('GET', `${A}/devices`);
  }
  enrolCode(deviceName: string) {
    return call<T.EnrolCode>('POST', `${A}/enrol-codes`, { device_name: deviceName });
  }
  deviceAction(device: string, action: T.DeviceAction, totp?: string) {
    return call<T.DeviceActionAnswer>('POST', `${A}/devices/${id(device)}/${action}`, totp === undefined ? {} : { totp });
  }
  async permitOffsite(device: string, until: string) {
    await call<unknown>('POST', `${A}/devices/${id(device)}/offsite`, { until });
  }
  async custody(device: string, event: T.CustodyEvent, note?: string) {
    await call<unknown>('POST', `${A}/devices/${id(device)}/custody`, note ? { event, note } : { event });
  }
  children() {
    return call<T.AdminChild[]>('GET', `${A}/children`);
  }
  async addChild(child: T.NewChild) {
    await call<unknown>('POST', `${A}/children`, child);
  }
  async changeChild(child: string, change: T.ChildChange) {
    await call<unknown>('PATCH', `${A}/children/${id(child)}`, change);
  }
  staff() {
    return call<T.AdminStaff[]>('GET', `${A}/staff`);
  }
  async addStaff(staff: T.NewStaff) {
    await call<unknown>('POST', `${A}/staff`, staff);
  }
  async changeStaff(staff: string, change: T.StaffChange) {
    await call<unknown>('PATCH', `${A}/staff/${id(staff)}`, change);
  }
  parents() {
    return call<T.AdminParent[]>('GET', `${A}/parents`);
  }
  invite(parent: T.NewParent) {
    return call<T.Invitation>('POST', `${A}/parents`, parent);
  }
  resendInvite(parent: string) {
    return call<T.Invitation>('POST', `${A}/parents/${id(parent)}/invitation`, {});
  }
  async link(parent: string, child: string) {
    await call<unknown>('POST', `${A}/parents/${id(parent)}/links`, { child_id: child });
  }
  async unlink(parent: string, child: string, totp: string) {
    await call<unknown>('DELETE', `${A}/parents/${id(parent)}/links/${id(child)}`, { totp });
  }
  rooms() {
    return call<T.AdminRoom[]>('GET', `${A}/rooms`);
  }
  coverage(days: number) {
    return call<T.Coverage>('GET', `${A}/coverage?days=${days}`);
  }
  pendingContributions() {
    return call<T.AdminContribution[]>('GET', `${A}/contributions?status=pending`);
  }
  approve(contribution: string) {
    return call<T.ContributionDecision>('POST', `${A}/contributions/${id(contribution)}/approve`, {});
  }
  reject(contribution: string, reason: string) {
    return call<T.ContributionDecision>('POST', `${A}/contributions/${id(contribution)}/reject`, { reason });
  }
  audit(filter: T.AuditFilter) {
    return call<T.AuditEvent[]>('GET', `${A}/audit${auditQuery(filter)}`);
  }
  auditCsvUrl(filter: T.AuditFilter) {
    return `${A}/audit.csv${auditQuery(filter)}`;
  }
  policy() {
    return call<T.AdminPolicy>('GET', `${A}/policy`);
  }
  setPolicy(policy: T.AdminPolicy) {
    return call<T.AdminPolicy>('PUT', `${A}/policy`, policy);
  }
}
