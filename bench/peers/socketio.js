// The socket.io reference server for `rtm bench` (bench/compare.sh runs it).
// Usage: node socketio.js PORT
// WebSocket transport only, no compression, the default in-memory adapter:
// what a team would write for a chat backend in a few lines.
//   login(uid, ack)         joins the room "u:<uid>" (peer messages)
//   join(channel, ack)      joins the room "c:<channel>"
//   pub(channel, text)      to every other member of the channel, event "m"
//   peer(uid, text)         to that user, event "m"
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 7431);
const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
});

io.on("connection", (socket) => {
  socket.on("login", (uid, ack) => {
    socket.join("u:" + uid);
    if (typeof ack === "function") ack();
  });
  socket.on("join", (channel, ack) => {
    socket.join("c:" + channel);
    if (typeof ack === "function") ack();
  });
  socket.on("pub", (channel, text) => {
    socket.to("c:" + channel).emit("m", text);
  });
  socket.on("peer", (uid, text) => {
    io.to("u:" + uid).emit("m", text);
  });
});

httpServer.listen(port, "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
console.log(`socket.io listening on ws://127.0.0.1:${port}`);
