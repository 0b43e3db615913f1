/**
 * `cdk synth` / `cdk deploy` entry (infra/cdk.json): every stage of `src/Stages.ts`, one stack
 * each (`Spillway-dev`, `Spillway-prod-us`, …), with the bundles of `npm run build`.
 */
import { App } from "aws-cdk-lib"
import { addStages } from "../src/SpillwayApp.js"

const app = new App()
addStages(app)
app.synth()
