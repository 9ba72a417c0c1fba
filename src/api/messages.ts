/** The client API's messages as the proto loader presents them (camelCase, uint64 as number, bytes as Buffer). */

export type ConsistencyName = "CONSISTENCY_LINEARIZABLE" | "CONSISTENCY_STALE";

export interface NodeStatusMsg {
  id: string;
  clusterId: string;
  role: string;
  leader: string;
  term: number;
  commit: number;
  applied: number;
  lastIndex: number;
  voters: string[];
  learners: string[];
  api: string;
  snapshotIndex: number;
  version: string;
}

export interface MemberMsg {
  id: string;
  peer: string;
  api: string;
  learner: boolean;
  match: number;
}

export interface MembersResponseMsg {
  members: MemberMsg[];
  leader: string;
  index: number;
}

export interface AddMemberRequestMsg {
  id: string;
  peer: string;
  api: string;
  learner: boolean;
}

export interface MemberRequestMsg {
  id: string;
}

export interface MemberChangeResponseMsg {
  members: MemberMsg[];
  index: number;
}

export interface TransferLeaderRequestMsg {
  id: string;
}

export interface TransferLeaderResponseMsg {
  leader: string;
  term: number;
}

export interface GetRequestMsg {
  key: string;
  consistency: ConsistencyName;
}

export interface GetResponseMsg {
  found: boolean;
  value: Buffer;
  index: number;
}

export interface PutRequestMsg {
  key: string;
  value: Buffer;
}

export interface PutResponseMsg {
  index: number;
  hadPrevious: boolean;
}

export interface DeleteRequestMsg {
  key: string;
}

export interface DeleteResponseMsg {
  index: number;
  existed: boolean;
}
