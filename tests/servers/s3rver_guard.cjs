// Loaded into s3rver with `node --require`: keep the test server up after its own bug.
//
// s3rver 3.7.1 removes a directory left empty by a delete while another request,
// between creating that directory and opening its file, writes into it; the
// write stream's ENOENT is never handled and ends the process. Logged here
// instead, the one request fails and its client retries it.
process.on("uncaughtException", (error) => {
  console.error(`s3rver kept running after an unhandled error: ${error && error.stack}`);
});
