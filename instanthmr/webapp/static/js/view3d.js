// The 3D view: MHR70 skeletons, the camera frustum, an orbit camera, and the ground grid
// when the world frame is known.
//
// Without a world frame, points are in the camera frame (X right, Y down, Z forward) and
// shown as (x, -y, -z), so three.js's Y is up and the camera looks down -Z. With world
// joints (gravity-aligned, Y up, metres) they are shown as they are, on a ground grid, and
// the camera frustum is placed with the frame's `camera_world` pose.

import * as THREE from "../vendor/three/three.module.min.js";
import { OrbitControls } from "../vendor/three/OrbitControls.js";

const FRUSTUM_DEPTH = 1.0; // metres: where the image plane is drawn
const camToView = (p) => new THREE.Vector3(p[0], -p[1], -p[2]);

export class View3D {
  constructor(container, skeleton) {
    this.container = container;
    this.skeleton = skeleton;
    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    container.appendChild(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x0d0f13);
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

  /** Draw one frame record; returns the number of skeletons shown. */
  update(frame) {
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
    this.grid.visible = world;
    for (const group of this.people.children) group.children.forEach((o) => o.geometry.dispose());
    this.people.clear();
    for (const p of persons) {
      const pts = world ? p.joints_3d_world.map((q) => new THREE.Vector3(q[0], q[1], q[2]))
        : p.joints_3d_cam.map(camToView);
      this.people.add(this.makeSkeleton(pts));
    }
    if (persons.length) {
      this.setFrustum(persons[0], toView);
      if (!this.centred) this.recenter();
    }
    this.lastCount = persons.length;
    this.render();
    return persons.length;
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
}
