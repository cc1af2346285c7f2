// The 3D view: MHR70 skeletons (lines, or a solid body of capsules), the camera frustum, an
// orbit camera (mouse and touch), and the ground grid when the world frame is known.
//
// Without a world frame, points are in the camera frame (X right, Y down, Z forward) and
// shown as (x, -y, -z), so three.js's Y is up and the camera looks down -Z; a note says why
// there is no grid. With world joints (gravity-aligned, Y up, metres) they are shown as they
// are, on a ground grid, and the camera frustum is placed with the frame's `camera_world`.

import * as THREE from "../vendor/three/three.module.min.js";
import { OrbitControls } from "../vendor/three/OrbitControls.js";

const FRUSTUM_DEPTH = 1.0; // metres: where the image plane is drawn
const LIMB_RADIUS = 0.045; // metres: capsules of the solid body
const HEAD_RADIUS = 0.11;
const camToView = (p) => new THREE.Vector3(p[0], -p[1], -p[2]);
const FINGER = /thumb|index|middle|ring|pinky/;

/** Why this browser cannot show the 3D view, or null when it has WebGL. */
export function webglProblem() {
  try {
    const canvas = document.createElement("canvas");
    if (canvas.getContext("webgl2") || canvas.getContext("webgl")) return null;
  } catch (err) {
    return `WebGL failed (${err.message})`;
  }
  return "this browser has WebGL turned off or no graphics driver for it";
}

/** Why there is no ground grid for `frame`, or "" when its world frame is known. */
export function gridReason(frame) {
  if (!frame) return "";
  const w = frame.world;
  if (w === null || w === undefined)
    return "No ground grid: the server runs without the world stage (start it without --no-world).";
  if (!w.known) return `No ground grid: ${w.reason || "the world frame is not known yet"}.`;
  if (!frame.camera_world && frame.persons.length)
    return "No ground grid: no person with world joints in this frame.";
  return "";
}

/** A stand-in for the 3D view when WebGL is missing: says why, keeps the page working. */
export class NoView3D {
  constructor(container, reason) {
    this.reason = reason;
    this.skeletonsDrawn = 0;
    this.lastCount = 0;
    container.classList.add("off");
    const note = container.querySelector("#view3d-note");
    note.textContent = `3D view off: ${reason}. The 2D overlay, uploads and downloads still work.`;
    note.hidden = false;
  }

  update() { return 0; }

  clear() {}

  recenter() {}

  setSolid() {}

  state() { return { on: false, reason: this.reason }; }
}

export class View3D {
  constructor(container, skeleton) {
    this.container = container;
    this.skeleton = skeleton;
    this.note = container.querySelector("#view3d-note");
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    container.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x0d0f13);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x334455, 2.0));
    const sun = new THREE.DirectionalLight(0xffffff, 1.5);
    sun.position.set(2, 4, 3);
    this.scene.add(sun);
    this.camera = new THREE.PerspectiveCamera(50, 4 / 3, 0.01, 200);
    this.camera.position.set(2.5, 1.5, 2.0);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.target.set(0, 0, -3);
    this.controls.addEventListener("change", () => this.render());
    this.grid = new THREE.GridHelper(10, 20, 0x555555, 0x2a2a2a);
    this.grid.visible = false;
    this.scene.add(this.grid);
    this.axes = new THREE.AxesHelper(0.3);
    this.scene.add(this.axes);
    this.frustum = this.makeFrustum();
    this.scene.add(this.frustum);
    this.people = new THREE.Group();
    this.scene.add(this.people);
    this.edgeColors = new Float32Array(skeleton.edges.length * 6);
    skeleton.edges.forEach((_, e) => {
      const c = skeleton.edge_colors[e].map((v) => v / 255);
      this.edgeColors.set([...c, ...c], e * 6);
    });
    this.jointColors = new Float32Array(skeleton.joint_colors.flat().map((v) => v / 255));
    this.lineMaterial = new THREE.LineBasicMaterial({ vertexColors: true });
    this.pointMaterial = new THREE.PointsMaterial({ size: 0.03, vertexColors: true });
    // the solid body: capsules (a cylinder and two spheres) along the body's bones
    const names = skeleton.joint_names;
    this.bones = skeleton.body_edges.filter(([a, b]) => !FINGER.test(names[a]) && !FINGER.test(names[b]));
    this.boneColors = this.bones.map(([, b]) => new THREE.Color(...skeleton.joint_colors[b].map((v) => v / 255)));
    this.ears = [names.indexOf("left_ear"), names.indexOf("right_ear")];
    this.cylinder = new THREE.CylinderGeometry(LIMB_RADIUS, LIMB_RADIUS, 1, 12, 1, true);
    this.sphere = new THREE.SphereGeometry(1, 14, 10);
    this.solidMaterial = new THREE.MeshStandardMaterial({ roughness: 0.6, metalness: 0.0 });
    this.solid = false;
    this.frame = null;
    this.centred = false;
    this.skeletonsDrawn = 0;
    this.lastCount = 0;
    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
  }

  makeFrustum() {
    const geom = new THREE.BufferGeometry();
    geom.setAttribute("position", new THREE.Float32BufferAttribute(new Float32Array(16 * 3), 3));
    const lines = new THREE.LineSegments(geom, new THREE.LineBasicMaterial({ color: 0x3da5ff }));
    lines.frustumCulled = false;
    return lines;
  }

  /** Update the frustum from the frame's pinhole; `toView` maps camera-frame points. */
  setFrustum(person, toView) {
    const [w, h] = person.image_size;
    const f = person.focal_length;
    const [cx, cy] = person.principal_point;
    const d = FRUSTUM_DEPTH;
    const corners = [[0, 0], [w, 0], [w, h], [0, h]].map(([u, v]) =>
      toView([((u - cx) / f) * d, ((v - cy) / f) * d, d]));
    const o = toView([0, 0, 0]);
    const segs = [];
    corners.forEach((c, i) => segs.push(o, c, c, corners[(i + 1) % 4]));
    const pos = this.frustum.geometry.attributes.position;
    segs.forEach((p, i) => pos.setXYZ(i, p.x, p.y, p.z));
    pos.needsUpdate = true;
    this.axes.position.copy(o);
  }

  /** Show skeletons as lines (false) or as a solid body of capsules (true). */
  setSolid(on) {
    this.solid = Boolean(on);
    this.update(this.frame);
  }

  /** Draw one frame record (null: nothing); returns the number of skeletons shown. */
  update(frame) {
    this.frame = frame;
    const persons = frame ? frame.persons : [];
    const pose = frame && frame.camera_world;
    const world = Boolean(pose) && persons.every((p) => p.joints_3d_world);
    let toView = camToView;
    if (world) {
      const R = pose.rotation;
      const t = pose.position;
      toView = (p) => new THREE.Vector3(
        R[0][0] * p[0] + R[0][1] * p[1] + R[0][2] * p[2] + t[0],
        R[1][0] * p[0] + R[1][1] * p[1] + R[1][2] * p[2] + t[1],
        R[2][0] * p[0] + R[2][1] * p[1] + R[2][2] * p[2] + t[2]);
    }
    const known = Boolean(frame && frame.world && frame.world.known);
    this.grid.visible = world || (known && !persons.length && this.grid.visible); // nobody: keep it
    const reason = world ? "" : gridReason(frame);
    this.note.textContent = reason;
    this.note.hidden = !reason;
    this.disposePeople();
    for (const p of persons) {
      const pts = world ? p.joints_3d_world.map((q) => new THREE.Vector3(q[0], q[1], q[2]))
        : p.joints_3d_cam.map(camToView);
      this.people.add(this.solid ? this.makeBody(pts) : this.makeSkeleton(pts));
    }
    if (persons.length) {
      this.setFrustum(persons[0], toView);
      if (world) this.placeGrid();
      if (!this.centred) this.recenter();
    }
    this.lastCount = persons.length;
    this.render();
    return persons.length;
  }

  /** Keep the ground grid (y = 0, 10 m wide) under the people, on whole metres. */
  placeGrid() {
    const centre = new THREE.Box3().setFromObject(this.people).getCenter(new THREE.Vector3());
    this.grid.position.set(Math.round(centre.x), 0, Math.round(centre.z));
  }

  /** Remove every skeleton and the grid note (nothing is being shown). */
  clear() {
    this.update(null);
  }

  disposePeople() {
    for (const group of this.people.children)
      group.children.forEach((o) => (o.isInstancedMesh ? o.dispose() : o.geometry.dispose()));
    this.people.clear();
  }

  makeSkeleton(pts) {
    const seg = new Float32Array(this.skeleton.edges.length * 6);
    this.skeleton.edges.forEach(([a, b], e) => {
      seg.set([pts[a].x, pts[a].y, pts[a].z, pts[b].x, pts[b].y, pts[b].z], e * 6);
    });
    const lg = new THREE.BufferGeometry();
    lg.setAttribute("position", new THREE.BufferAttribute(seg, 3));
    lg.setAttribute("color", new THREE.BufferAttribute(this.edgeColors, 3));
    const group = new THREE.Group();
    group.add(new THREE.LineSegments(lg, this.lineMaterial));
    const pg = new THREE.BufferGeometry().setFromPoints(pts);
    pg.setAttribute("color", new THREE.BufferAttribute(this.jointColors, 3));
    group.add(new THREE.Points(pg, this.pointMaterial));
    group.userData.skeleton = true;
    return group;
  }

  /** A solid body: a capsule (cylinder with round ends) per bone and a sphere for the head. */
  makeBody(pts) {
    const n = this.bones.length;
    const limbs = new THREE.InstancedMesh(this.cylinder, this.solidMaterial, n);
    const joints = new THREE.InstancedMesh(this.sphere, this.solidMaterial, 2 * n + 1);
    const m = new THREE.Matrix4();
    const q = new THREE.Quaternion();
    const up = new THREE.Vector3(0, 1, 0);
    const dir = new THREE.Vector3();
    const mid = new THREE.Vector3();
    const ball = new THREE.Vector3(LIMB_RADIUS, LIMB_RADIUS, LIMB_RADIUS);
    this.bones.forEach(([a, b], i) => {
      dir.subVectors(pts[b], pts[a]);
      const len = Math.max(dir.length(), 1e-4);
      q.setFromUnitVectors(up, dir.normalize());
      mid.addVectors(pts[a], pts[b]).multiplyScalar(0.5);
      limbs.setMatrixAt(i, m.compose(mid, q, new THREE.Vector3(1, len, 1)));
      limbs.setColorAt(i, this.boneColors[i]);
      joints.setMatrixAt(2 * i, m.compose(pts[a], q, ball));
      joints.setMatrixAt(2 * i + 1, m.compose(pts[b], q, ball));
      joints.setColorAt(2 * i, this.boneColors[i]);
      joints.setColorAt(2 * i + 1, this.boneColors[i]);
    });
    const head = pts[this.ears[0]].clone().add(pts[this.ears[1]]).multiplyScalar(0.5);
    joints.setMatrixAt(2 * n, m.compose(head, q.identity(), new THREE.Vector3(HEAD_RADIUS, HEAD_RADIUS * 1.15, HEAD_RADIUS)));
    joints.setColorAt(2 * n, new THREE.Color(0xd8d8d8));
    const group = new THREE.Group();
    group.add(limbs, joints);
    group.userData.skeleton = true;
    return group;
  }

  /** Aim the orbit camera at the people, from behind and above the real camera. */
  recenter() {
    const box = new THREE.Box3().setFromObject(this.people);
    if (box.isEmpty()) return;
    const centre = box.getCenter(new THREE.Vector3());
    const size = Math.max(box.getSize(new THREE.Vector3()).length(), 1.0);
    this.controls.target.copy(centre);
    const eye = this.axes.position.clone();
    const back = eye.clone().sub(centre).normalize();
    this.camera.position.copy(eye).addScaledVector(back, size * 0.6);
    this.camera.position.y += size * 0.5;
    this.camera.position.x += size * 0.6;
    this.controls.update();
    this.centred = true;
  }

  resize() {
    const w = this.container.clientWidth || 640;
    const h = this.container.clientHeight || 480;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.render();
  }

  render() {
    this.renderer.render(this.scene, this.camera);
    this.skeletonsDrawn += this.people.children.filter((c) => c.userData.skeleton).length;
  }

  /** For tests and the page: on, people shown, grid, orbit distance and angle. */
  state() {
    return {
      on: true,
      people: this.people.children.length,
      solid: this.solid,
      grid: this.grid.visible,
      note: this.note.hidden ? "" : this.note.textContent,
      distance: this.camera.position.distanceTo(this.controls.target),
      azimuth: this.controls.getAzimuthalAngle(),
      polar: this.controls.getPolarAngle(),
    };
  }
}

/** The 3D view, or a NoView3D saying why there is none (never throws). */
export function createView(container, skeleton) {
  const problem = webglProblem();
  if (problem) return new NoView3D(container, problem);
  try {
    return new View3D(container, skeleton);
  } catch (err) {
    container.querySelectorAll("canvas").forEach((c) => c.remove());
    return new NoView3D(container, `WebGL could not start (${err.message})`);
  }
}
