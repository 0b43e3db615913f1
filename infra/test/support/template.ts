/** Reading one stack's template: resources by the construct that made them, and their policies. */
import { type CfnElement, Stack } from "aws-cdk-lib"
import type { Template } from "aws-cdk-lib/assertions"
import type { IConstruct } from "constructs"

export interface Resource {
  readonly Type: string
  readonly Properties: Record<string, unknown>
  readonly DependsOn?: ReadonlyArray<string>
}

/** The logical id of a construct's CloudFormation resource (its default child, or itself). */
export const logicalId = (construct: IConstruct): string => {
  const element = (construct.node.defaultChild ?? construct) as CfnElement
  return Stack.of(construct).getLogicalId(element)
}

export const ref = (construct: IConstruct) => ({ Ref: logicalId(construct) })
export const getAtt = (construct: IConstruct, attribute = "Arn") => ({
  "Fn::GetAtt": [logicalId(construct), attribute]
})

export const resource = (template: Template, id: string): Resource => {
  const found = (template.toJSON().Resources as Record<string, Resource>)[id]
  if (found === undefined) throw new Error(`no resource ${id} in the template`)
  return found
}

/** The one resource of `type` whose properties include `where` (as `findResources` matches). */
export const onlyResource = (template: Template, type: string, where: Record<string, unknown>): Resource => {
  const found = Object.values(template.findResources(type, { Properties: where })) as Array<Resource>
  if (found.length !== 1) throw new Error(`${found.length} ${type} resources match ${JSON.stringify(where)}`)
  return found[0] as Resource
}

export interface Statement {
  readonly Action: string | ReadonlyArray<string>
  readonly Resource: unknown
  readonly Effect: string
  readonly Condition?: unknown
}

/** Every statement of the identity policies attached to `role` (the role's default policy and any other). */
export const statementsOf = (template: Template, role: IConstruct): ReadonlyArray<Statement> => {
  const roleId = logicalId(role)
  const policies = Object.values(template.findResources("AWS::IAM::Policy")) as Array<Resource>
  return policies
    .filter((policy) => (policy.Properties.Roles as Array<{ Ref: string }>).some((r) => r.Ref === roleId))
    .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Array<Statement> }).Statement)
}

/** A statement's actions, as a sorted list. */
export const actionsOf = (statement: Statement): ReadonlyArray<string> =>
  (typeof statement.Action === "string" ? [statement.Action] : [...statement.Action]).sort()

/** `{ actions, resource, condition? }` of each statement, sorted, for whole-policy comparisons. */
export const grants = (statements: ReadonlyArray<Statement>) =>
  statements
    .map((statement) => ({
      actions: actionsOf(statement),
      resource: statement.Resource,
      ...(statement.Condition === undefined ? {} : { condition: statement.Condition })
    }))
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))

/** A function's environment variables, as the template has them. */
export const envOf = (template: Template, fn: { readonly function: IConstruct }): Record<string, unknown> =>
  (
    resource(template, logicalId(fn.function)).Properties.Environment as {
      Variables: Record<string, unknown>
    }
  ).Variables
